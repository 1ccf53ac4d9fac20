package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sportello/gateway/clientip"
)

// Config is everything Sportello reads from flags and the environment,
// validated once at start and passed down; nothing else reads os.Getenv.
type Config struct {
	Addr       string // listen address
	DataDir    string // SQLite file and generated keys live here
	BaseURL    string // public URL, used in links; https makes cookies Secure
	AdminEmail string // first platform admin, created on first start
	// AdminPassword, when set, is the first admin's password instead of a
	// random one (for automated environments; never printed).
	AdminPassword  string
	Dev            bool // development helpers (citizen login page)
	SMTPURL        string
	PushURL        string
	TrustedProxies []netip.Prefix
	Retention      time.Duration // how long message content is kept
	LogLevel       string

	Keys Keys
}

// Keys are the server's secrets: generated on first start and kept in the
// data dir (mode 0600) unless given by environment.
type Keys struct {
	SessionHash  []byte // gorilla/sessions HMAC key
	SessionBlock []byte // gorilla/sessions AES key
	// Signing is the master signing key. Nothing signs with it directly:
	// each purpose below has its own key derived from it (deriveKey), so
	// whoever holds one of them (a push webhook receiver holds Push)
	// learns nothing about the others.
	Signing      []byte
	Push         []byte // push webhook signatures: SPORTELLO_PUSH_SECRET, else derived
	CitizenToken []byte // citizen bearer tokens (and the dev app's cookie)
	EmailLink    []byte // citizen e-mail validation links
}

// Purposes of the keys derived from the master signing key. Changing one
// changes that key only (every token or signature made with it stops
// verifying).
const (
	purposePush         = "sportello push webhook v1"
	purposeCitizenToken = "sportello citizen token v1"
	purposeEmailLink    = "sportello email link v1"
)

// deriveKey is HMAC-SHA256(master, purpose): a 32-byte key for one
// purpose. HMAC is a PRF, so the derived keys are independent of each
// other and reveal nothing about the master.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// parseServeConfig reads the serve command's flags with environment fallbacks.
func parseServeConfig(args []string) (*Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := &Config{}
	fs.StringVar(&c.Addr, "addr", env("SPORTELLO_ADDR", ":8080"), "listen address (SPORTELLO_ADDR)")
	fs.StringVar(&c.DataDir, "data", env("SPORTELLO_DATA", "./data"), "data directory (SPORTELLO_DATA)")
	devEnv := env("SPORTELLO_DEV", "0")
	if devEnv != "0" && devEnv != "1" {
		// "true" or "yes" would otherwise leave development mode off
		// without a word.
		return nil, fmt.Errorf("SPORTELLO_DEV %q: want 1 (on) or 0 (off)", devEnv)
	}
	fs.BoolVar(&c.Dev, "dev", devEnv == "1", "enable development helpers such as the test citizen login (SPORTELLO_DEV=1)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.BaseURL = env("SPORTELLO_BASE_URL", "")
	c.AdminEmail = env("SPORTELLO_ADMIN_EMAIL", "admin@localhost")
	c.AdminPassword = os.Getenv("SPORTELLO_ADMIN_PASSWORD")
	c.SMTPURL = env("SPORTELLO_SMTP_URL", "")
	c.PushURL = env("SPORTELLO_PUSH_URL", "")
	c.LogLevel = env("SPORTELLO_LOG_LEVEL", "info")
	var err error
	if c.TrustedProxies, err = clientip.ParsePrefixes(env("SPORTELLO_TRUSTED_PROXIES", "")); err != nil {
		return nil, fmt.Errorf("SPORTELLO_TRUSTED_PROXIES: %w", err)
	}
	if c.Retention, err = time.ParseDuration(env("SPORTELLO_RETENTION", "720h")); err != nil || c.Retention < time.Hour {
		return nil, fmt.Errorf("SPORTELLO_RETENTION: want a duration of at least 1h, like 720h")
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: want host:port, like :8080: %w", c.Addr, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--addr %q: the port must be a number from 0 to 65535", c.Addr)
	}
	if c.BaseURL == "" {
		c.BaseURL = defaultBaseURL(c.Addr)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("SPORTELLO_BASE_URL %q: want an http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if !strings.Contains(c.AdminEmail, "@") {
		return fmt.Errorf("SPORTELLO_ADMIN_EMAIL %q is not an email address", c.AdminEmail)
	}
	for _, s := range []struct{ name, v string }{{"SPORTELLO_SMTP_URL", c.SMTPURL}, {"SPORTELLO_PUSH_URL", c.PushURL}} {
		if s.v == "" {
			continue
		}
		if u, err := url.Parse(s.v); err != nil || u.Host == "" {
			return fmt.Errorf("%s: not a valid URL", s.name)
		}
	}
	if c.PushURL != "" {
		// It parses: the loop above refused it otherwise.
		if u, _ := url.Parse(c.PushURL); u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("SPORTELLO_PUSH_URL: want an http(s) URL, not %q", u.Scheme)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("SPORTELLO_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func defaultBaseURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// keysFile is where generated secrets are kept between starts.
const keysFile = "keys.json"

type keysJSON struct {
	SessionHash  string `json:"session_hash"`
	SessionBlock string `json:"session_block"`
	Signing      string `json:"signing"`
}

// loadKeys returns the secrets from the environment (SPORTELLO_SESSION_KEY:
// 128 hex chars = hash+block key; SPORTELLO_SIGNING_KEY: 64 hex chars) or
// from the data dir, generating and saving them on first start, and
// derives the per-purpose keys from the signing key (SPORTELLO_PUSH_SECRET,
// 64 hex chars, replaces the derived push key).
func loadKeys(dataDir string) (Keys, error) {
	var k Keys
	path := filepath.Join(dataDir, keysFile)
	var stored keysJSON
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &stored); err != nil {
			return k, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		stored = keysJSON{SessionHash: randHex(32), SessionBlock: randHex(32), Signing: randHex(32)}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return k, err
		}
		out, _ := json.MarshalIndent(stored, "", "  ")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return k, fmt.Errorf("save keys: %w", err)
		}
	default:
		return k, err
	}
	sessionSrc, signingSrc := path, path+" (signing key)"
	if v := os.Getenv("SPORTELLO_SESSION_KEY"); v != "" {
		sessionSrc = "SPORTELLO_SESSION_KEY"
		if len(v) != 128 {
			return k, fmt.Errorf("SPORTELLO_SESSION_KEY: want 128 hex characters (64 random bytes)")
		}
		stored.SessionHash, stored.SessionBlock = v[:64], v[64:]
	}
	if v := os.Getenv("SPORTELLO_SIGNING_KEY"); v != "" {
		signingSrc = "SPORTELLO_SIGNING_KEY"
		stored.Signing = v
	}
	for _, p := range []struct {
		name string
		hex  string
		dst  *[]byte
	}{{sessionSrc + " (session hash key)", stored.SessionHash, &k.SessionHash}, {sessionSrc + " (session block key)", stored.SessionBlock, &k.SessionBlock}, {signingSrc, stored.Signing, &k.Signing}} {
		v, err := hex.DecodeString(p.hex)
		if err != nil || len(v) != 32 {
			return k, fmt.Errorf("%s: want 64 hex characters", p.name)
		}
		*p.dst = v
	}
	k.Push = deriveKey(k.Signing, purposePush)
	k.CitizenToken = deriveKey(k.Signing, purposeCitizenToken)
	k.EmailLink = deriveKey(k.Signing, purposeEmailLink)
	if v := os.Getenv("SPORTELLO_PUSH_SECRET"); v != "" {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 32 {
			return k, fmt.Errorf("SPORTELLO_PUSH_SECRET: want 64 hex characters (32 random bytes)")
		}
		if hmac.Equal(b, k.Signing) {
			return k, fmt.Errorf("SPORTELLO_PUSH_SECRET must differ from the signing key (a webhook receiver holds it)")
		}
		k.Push = b
	}
	return k, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
