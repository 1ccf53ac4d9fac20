package demo

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"sportello/db/dbtest"
	"sportello/gateway/keys"
	"sportello/portal/servicecard"
)

func TestSeedCreatesOnceAndRegeneratesPrimaryKeys(t *testing.T) {
	d := dbtest.Open(t)
	ctx := context.Background()
	first, err := Seed(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.TestService.Key, "sp_test_") || !strings.HasPrefix(first.LiveService.Key, "sp_live_") ||
		len(first.TestService.TestFiscalCodes) == 0 {
		t.Fatalf("result %+v", first)
	}
	b, _ := json.Marshal(first)
	for _, k := range []string{`"test_service"`, `"live_service"`, `"test_fiscal_codes"`, `"key"`, `"id"`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("JSON %s lacks %s", b, k)
		}
	}
	second, err := Seed(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if second.TestService.Key == first.TestService.Key || second.LiveService.Key == first.LiveService.Key {
		t.Fatal("keys not regenerated")
	}
	var n int
	_ = d.R.Get(&n, `SELECT COUNT(*) FROM services`)
	if n != 2 {
		t.Fatalf("%d services after two seeds", n)
	}
	// Only the new primary keys are active; secondaries are untouched.
	var active []string
	_ = d.R.Select(&active, `SELECT key_hash FROM api_keys WHERE revoked_at IS NULL AND slot = 'primary'`)
	want := map[string]bool{keys.Hash(second.TestService.Key): true, keys.Hash(second.LiveService.Key): true}
	hits := 0
	for _, h := range active {
		if want[h] {
			hits++
		}
	}
	if hits != 2 || len(active) != 3 { // test primary of both services, live primary of one
		t.Fatalf("active primaries %d, hits %d", len(active), hits)
	}
	var live int
	_ = d.R.Get(&live, `SELECT COUNT(*) FROM services WHERE live_version_id IS NOT NULL`)
	if live != 1 {
		t.Fatalf("%d approved services", live)
	}
}

// The demo cards are valid cards: the portal's rules accept every field
// (an unknown topic was dropped by the card form, so saving the demo card
// unchanged opened a new version, and the review page had no words for it).
func TestSeedCardsPassTheCardRules(t *testing.T) {
	d := dbtest.Open(t)
	if _, err := Seed(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	var cards []string
	if err := d.R.Select(&cards, `SELECT card FROM service_versions`); err != nil || len(cards) != 2 {
		t.Fatalf("%d cards: %v", len(cards), err)
	}
	for _, c := range cards {
		var fields map[string]any
		if err := json.Unmarshal([]byte(c), &fields); err != nil {
			t.Fatal(err)
		}
		_, problems := servicecard.Parse(func(k string) string {
			if v, ok := fields[k].(string); ok {
				return v
			}
			return ""
		})
		if len(problems) > 0 {
			t.Errorf("demo card %s: %v", fields["name"], problems)
		}
	}
}
