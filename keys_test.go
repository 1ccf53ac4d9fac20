package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sportello/messaging/channels"
	"sportello/messaging/citizen"
	"sportello/messaging/delivery/deliverytest"
)

// capture runs the command line args and returns what it printed.
func capture(t *testing.T, args ...string) string {
	t.Helper()
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err := run(context.Background(), args)
	w.Close()
	os.Stdout = stdout
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// Each purpose has its own key derived from the signing key: stable
// between starts, different from each other and from the master.
func TestKeysAreDerivedPerPurpose(t *testing.T) {
	dir := t.TempDir()
	k, err := loadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string][]byte{"signing": k.Signing, "push": k.Push, "citizen token": k.CitizenToken, "email link": k.EmailLink}
	for a, ka := range all {
		if len(ka) != 32 {
			t.Fatalf("%s key: %d bytes", a, len(ka))
		}
		for b, kb := range all {
			if a != b && bytes.Equal(ka, kb) {
				t.Fatalf("%s and %s keys are the same", a, b)
			}
		}
	}
	again, _ := loadKeys(dir)
	if !bytes.Equal(again.Push, k.Push) || !bytes.Equal(again.CitizenToken, k.CitizenToken) || !bytes.Equal(again.EmailLink, k.EmailLink) {
		t.Fatal("derived keys changed between starts")
	}
	// A push secret of its own replaces the derived one, nothing else.
	own := strings.Repeat("5a", 32)
	t.Setenv("SPORTELLO_PUSH_SECRET", own)
	k2, err := loadKeys(dir)
	if err != nil || hex.EncodeToString(k2.Push) != own || !bytes.Equal(k2.CitizenToken, k.CitizenToken) {
		t.Fatalf("SPORTELLO_PUSH_SECRET: %v", err)
	}
	for _, bad := range []string{"zz", own[:62], hex.EncodeToString(k.Signing)} {
		t.Setenv("SPORTELLO_PUSH_SECRET", bad)
		if _, err := loadKeys(dir); err == nil {
			t.Fatalf("SPORTELLO_PUSH_SECRET %q accepted", bad)
		}
	}
}

// What a push webhook receiver must hold (the key "push-secret" prints,
// which verifies the signatures it gets) does not sign citizen tokens,
// and the token "citizen-token" prints is accepted by the server.
func TestPushReceiverCannotSignInAsACitizen(t *testing.T) {
	dir := t.TempDir()
	type call struct {
		ts   int64
		sig  string
		body []byte
	}
	got := make(chan call, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(channels.HeaderTimestamp), 10, 64)
		got <- call{ts, r.Header.Get(channels.HeaderSignature), body}
	}))
	defer rcv.Close()
	cfg, err := parseServeConfig([]string{"--addr", "127.0.0.1:0", "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	cfg.PushURL = rcv.URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(context.Background())
	for _, job := range a.background {
		go func() { _ = job(ctx) }()
	}
	srv := httptest.NewServer(a.handler)
	defer srv.Close()

	pushKey, err := hex.DecodeString(capture(t, "push-secret", "--data", dir))
	if err != nil || len(pushKey) != 32 {
		t.Fatalf("push-secret printed no 32-byte hex key: %v", err)
	}
	// A push goes out, and the printed key verifies it.
	fc := "RSSMRA85T10A562S"
	svc := serviceOf(t, a)
	if err := deliverytest.PutProfile(ctx, a.db, deliverytest.DefaultProfile(fc)); err != nil {
		t.Fatal(err)
	}
	if _, err := deliverytest.Insert(ctx, a.db, deliverytest.Message{Service: svc, FiscalCode: fc}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if !channels.Verify(pushKey, c.ts, c.body, c.sig) {
			t.Fatal("the push key push-secret prints does not verify the webhook's signature")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no push notification")
	}

	status := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/citizen/v1/profile", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	if code, _ := status(citizen.IssueToken(pushKey, fc, time.Now())); code != http.StatusUnauthorized {
		t.Fatalf("a token signed with the push key: %d, want 401", code)
	}
	if code, _ := status(capture(t, "citizen-token", "--data", dir, fc)); code != http.StatusOK {
		t.Fatalf("the token citizen-token prints: %d, want 200", code)
	}
}
