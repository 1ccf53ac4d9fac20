package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"sportello/db"
	"sportello/gateway/keys"
)

// service is what a request needs to know about the service behind a key,
// copied from the runtime columns of services.
type service struct {
	id            int64
	publicID      string
	institutionID int64
	cidrs         []netip.Prefix
	recipients    map[string]bool
	maxPayment    int64
	requireSecure bool
	rateRequests  int
	rateWindow    time.Duration
	suspended     bool // the service or its institution
	approved      bool // has a live version: live keys may be used
}

// principal is an authenticated key.
type principal struct {
	keyID     int64
	mode      keys.Mode
	suspended bool // this key alone, by a platform admin
	svc       *service
}

type cacheEntry struct {
	p      *principal // nil: no such active key
	loaded time.Time
}

// authCache maps key hashes to principals so authentication costs a hash
// and a map read, not a query. Invalidate bumps a generation so a load that
// raced with it is not stored: a revoked key stops working at once.
type authCache struct {
	d   *db.DB
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	gen     uint64
	entries map[string]cacheEntry
}

// maxUnknown bounds remembered unknown keys, so random keys cannot grow
// memory; past it the misses are simply forgotten.
const maxUnknown = 10000

func newAuthCache(d *db.DB, ttl time.Duration, now func() time.Time) *authCache {
	return &authCache{d: d, ttl: ttl, now: now, entries: map[string]cacheEntry{}}
}

func (c *authCache) lookup(ctx context.Context, hash string) (*principal, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[hash]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Sub(e.loaded) < c.ttl && now.Sub(e.loaded) >= 0 {
		return e.p, nil
	}
	p, err := loadPrincipal(ctx, c.d, hash)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen && (p != nil || len(c.entries) < maxUnknown) {
		c.entries[hash] = cacheEntry{p: p, loaded: now}
	}
	c.mu.Unlock()
	return p, nil
}

func (c *authCache) invalidate(match func(*service) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.entries {
		if e.p != nil && match(e.p.svc) {
			delete(c.entries, h)
		}
	}
}

func loadPrincipal(ctx context.Context, d *db.DB, hash string) (*principal, error) {
	var row struct {
		KeyID      int64  `db:"key_id"`
		Mode       string `db:"mode"`
		KeySusp    bool   `db:"key_suspended"`
		ServiceID  int64  `db:"service_id"`
		PublicID   string `db:"public_id"`
		InstID     int64  `db:"institution_id"`
		Recipients string `db:"authorized_recipients"`
		CIDRs      string `db:"authorized_cidrs"`
		MaxPayment int64  `db:"max_payment_cents"`
		Secure     bool   `db:"require_secure_channels"`
		RateReq    int    `db:"rate_limit_requests"`
		RateWindow int    `db:"rate_limit_window_s"`
		SvcSusp    bool   `db:"svc_suspended"`
		InstSusp   bool   `db:"inst_suspended"`
		Deleted    bool   `db:"deleted"`
		Approved   bool   `db:"approved"`
	}
	err := d.R.GetContext(ctx, &row, `SELECT k.id AS key_id, k.mode, k.suspended_at IS NOT NULL AS key_suspended, s.id AS service_id, s.public_id, s.institution_id,
		s.authorized_recipients, s.authorized_cidrs, s.max_payment_cents, s.require_secure_channels,
		s.rate_limit_requests, s.rate_limit_window_s,
		s.suspended_at IS NOT NULL AS svc_suspended, i.status = 'suspended' AS inst_suspended,
		s.deleted_at IS NOT NULL AS deleted, s.live_version_id IS NOT NULL AS approved
		FROM api_keys k JOIN services s ON s.id = k.service_id JOIN institutions i ON i.id = s.institution_id
		WHERE k.key_hash = ? AND k.revoked_at IS NULL`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: load key: %w", err)
	}
	if row.Deleted {
		return nil, nil // a deleted service has no keys
	}
	s := &service{id: row.ServiceID, publicID: row.PublicID, institutionID: row.InstID, maxPayment: row.MaxPayment,
		requireSecure: row.Secure, rateRequests: row.RateReq, rateWindow: time.Duration(max(row.RateWindow, 1)) * time.Second,
		suspended: row.SvcSusp || row.InstSusp, approved: row.Approved, recipients: map[string]bool{}}
	var list []string
	if err := json.Unmarshal([]byte(row.Recipients), &list); err != nil {
		return nil, fmt.Errorf("gateway: service %d recipients: %w", row.ServiceID, err)
	}
	for _, cf := range list {
		s.recipients[cf] = true
	}
	list = nil
	if err := json.Unmarshal([]byte(row.CIDRs), &list); err != nil {
		return nil, fmt.Errorf("gateway: service %d cidrs: %w", row.ServiceID, err)
	}
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			// A bare address is a /32 (or /128).
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, fmt.Errorf("gateway: service %d cidr %q: %w", row.ServiceID, c, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		s.cidrs = append(s.cidrs, p.Masked())
	}
	return &principal{keyID: row.KeyID, mode: keys.Mode(row.Mode), suspended: row.KeySusp, svc: s}, nil
}

// allowedFrom reports whether the client address is inside the service's
// authorized CIDRs (none configured: any address).
func (s *service) allowedFrom(a netip.Addr) bool {
	if len(s.cidrs) == 0 {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
