package portal

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// PasswordCost is argon2id's memory (KiB) and time parameters.
type PasswordCost struct {
	MemoryKiB uint32
	Time      uint32
}

// DefaultPasswordCost follows OWASP's argon2id recommendation (19 MiB, t=2).
var DefaultPasswordCost = PasswordCost{MemoryKiB: 19 * 1024, Time: 2}

func (c PasswordCost) orDefault() PasswordCost {
	if c.MemoryKiB == 0 || c.Time == 0 {
		return DefaultPasswordCost
	}
	return c
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

type passwordHasher struct {
	cost PasswordCost
	// slots bounds how many hashes run at once. Each takes cost.MemoryKiB
	// (19 MiB by default) for its duration: 150 concurrent anonymous
	// logins took the process to 2.9 GB; with the bound, the others wait
	// their turn and memory stays at slots × 19 MiB. Nil: no bound.
	slots chan struct{}
}

// newPasswordHasher bounds concurrent hashing to two per CPU: more would
// not finish sooner (argon2 is CPU-bound), only use more memory.
func newPasswordHasher(cost PasswordCost) passwordHasher {
	return passwordHasher{cost: cost, slots: make(chan struct{}, 2*runtime.NumCPU())}
}

// key runs argon2id inside a slot.
func (h passwordHasher) key(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	if h.slots != nil {
		h.slots <- struct{}{}
		defer func() { <-h.slots }()
	}
	return argon2.IDKey(pw, salt, t, m, p, n)
}

// Hash returns a PHC-style argon2id string; the parameters travel with the
// hash, so raising the cost later keeps old hashes verifiable.
func (h passwordHasher) Hash(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := h.key([]byte(pw), salt, h.cost.Time, h.cost.MemoryKiB, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", h.cost.MemoryKiB, h.cost.Time,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

var errBadHash = errors.New("malformed password hash")

// Verify checks pw against an encoded hash in constant time.
func (h passwordHasher) Verify(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false, errBadHash
	}
	got := h.key([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when an e-mail is unknown, so a failed login
// takes the same time whether or not the account exists.
func (h passwordHasher) dummy() string {
	return h.Hash("sportello-no-such-user-padding")
}

//go:embed common_passwords.txt
var commonPasswordList string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordList))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			m[strings.ToLower(l)] = true
		}
	}
	return m
}()

// passwordProblem returns the i18n key of what is wrong with a new
// password, or "" when it is acceptable.
func passwordProblem(pw, email, name string) string {
	if len([]rune(pw)) < MinPasswordLength {
		return "password.too_short"
	}
	if len(pw) > 256 {
		return "password.too_long"
	}
	lower := strings.ToLower(pw)
	if commonPasswords[lower] || commonPasswords[strings.TrimRightFunc(lower, unicode.IsDigit)] {
		return "password.common"
	}
	distinct := map[rune]bool{}
	for _, c := range lower {
		distinct[c] = true
	}
	if len(distinct) < 5 {
		return "password.common"
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 && strings.Contains(lower, local) {
		return "password.personal"
	}
	for _, part := range strings.Fields(strings.ToLower(name)) {
		if len(part) >= 4 && strings.Contains(lower, part) {
			return "password.personal"
		}
	}
	return ""
}

// PasswordProblem is passwordProblem for the first admin's password
// given by the environment, which no form checks: the i18n key of what
// is wrong with it, or "".
func PasswordProblem(pw, email string) string {
	return passwordProblem(pw, email, "Amministratore piattaforma")
}
