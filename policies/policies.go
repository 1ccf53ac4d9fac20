// Package policies holds Sportello's access-control model and policy as text
// (model.conf, policy.csv) and a small wrapper around the casbin enforcer.
//
// Subjects are "user:<id>", domains "inst:<id>" or "platform". Role
// assignments live in the database (memberships, users.is_platform_admin);
// the caller loads them at start with Grant and keeps them in sync.
package policies

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"
)

//go:embed model.conf
var modelText string

//go:embed policy.csv
var policyText string

// Roles.
const (
	PlatformAdmin = "platform_admin"
	InstAdmin     = "inst_admin"
	InstOperator  = "inst_operator"
)

// PlatformDomain is the domain of platform-wide objects (the admin console).
const PlatformDomain = "platform"

// Enforcer decides whether a user may act on an object in a domain.
type Enforcer struct {
	e *casbin.SyncedEnforcer
}

// New builds an enforcer from the embedded model and policy, with no user
// role assignments yet.
func New() (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	// Drop comment lines: the string adapter does not skip them.
	var lines []string
	for _, l := range strings.Split(policyText, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	e, err := casbin.NewSyncedEnforcer(m, stringadapter.NewAdapter(strings.Join(lines, "\n")))
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	return &Enforcer{e: e}, nil
}

// User returns the casbin subject of a user id.
func User(id int64) string { return fmt.Sprintf("user:%d", id) }

// Institution returns the casbin domain of an institution id.
func Institution(id int64) string { return fmt.Sprintf("inst:%d", id) }

// Allowed reports whether user may perform act on obj in domain.
func (p *Enforcer) Allowed(userID int64, domain, obj, act string) bool {
	ok, err := p.e.Enforce(User(userID), domain, obj, act)
	return err == nil && ok
}

// SetInstitutionRole replaces the user's role in an institution; an empty
// role removes the membership.
func (p *Enforcer) SetInstitutionRole(userID, instID int64, role string) error {
	sub, dom := User(userID), Institution(instID)
	for _, r := range []string{InstAdmin, InstOperator} {
		if _, err := p.e.DeleteRoleForUserInDomain(sub, r, dom); err != nil {
			return err
		}
	}
	if role == "" {
		return nil
	}
	_, err := p.e.AddRoleForUserInDomain(sub, role, dom)
	return err
}

// SetPlatformAdmin grants or revokes the platform admin role.
func (p *Enforcer) SetPlatformAdmin(userID int64, on bool) error {
	if p.IsPlatformAdmin(userID) == on {
		return nil
	}
	var err error
	if on {
		_, err = p.e.AddRoleForUserInDomain(User(userID), PlatformAdmin, "*")
	} else {
		_, err = p.e.DeleteRoleForUserInDomain(User(userID), PlatformAdmin, "*")
	}
	return err
}

// RoleFor maps a membership role stored in the database ("admin",
// "operator") to its casbin role.
func RoleFor(membershipRole string) string {
	switch membershipRole {
	case "admin":
		return InstAdmin
	case "operator":
		return InstOperator
	}
	return ""
}

// IsPlatformAdmin reports whether userID holds the platform admin role.
func (p *Enforcer) IsPlatformAdmin(userID int64) bool {
	ok, _ := p.e.HasRoleForUser(User(userID), PlatformAdmin, "*")
	return ok
}
