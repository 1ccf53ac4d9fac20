package policies

import "testing"

// TestPolicyTable checks every role against every object/action the portal
// uses, so a change to policy.csv shows up here as a reviewed diff.
func TestPolicyTable(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const (
		platformAdmin = 1
		admin         = 2 // inst_admin of institution 10
		operator      = 3 // inst_operator of institution 10
		stranger      = 4 // inst_admin of institution 20 only
	)
	must(t, e.SetPlatformAdmin(platformAdmin, true))
	must(t, e.SetInstitutionRole(admin, 10, InstAdmin))
	must(t, e.SetInstitutionRole(operator, 10, InstOperator))
	must(t, e.SetInstitutionRole(stranger, 20, InstAdmin))

	type perm struct{ obj, act string }
	all := []perm{
		{"institution", "read"}, {"institution", "update"},
		{"members", "read"}, {"members", "invite"}, {"members", "manage"},
		{"audit", "read"},
		{"services", "read"}, {"services", "write"}, {"services", "submit"}, {"services", "delete"},
		{"keys", "read"}, {"keys", "manage"},
		{"usage", "read"}, {"messages", "read"},
	}
	operatorMay := map[perm]bool{
		{"institution", "read"}: true, {"members", "read"}: true,
		{"services", "read"}: true, {"services", "write"}: true, {"services", "submit"}: true,
		{"keys", "read"}: true, {"usage", "read"}: true, {"messages", "read"}: true,
	}
	inst10 := Institution(10)
	for _, p := range all {
		if !e.Allowed(platformAdmin, inst10, p.obj, p.act) {
			t.Errorf("platform admin denied %s/%s", p.obj, p.act)
		}
		if !e.Allowed(admin, inst10, p.obj, p.act) {
			t.Errorf("inst admin denied %s/%s", p.obj, p.act)
		}
		if got := e.Allowed(operator, inst10, p.obj, p.act); got != operatorMay[p] {
			t.Errorf("operator %s/%s = %v, want %v", p.obj, p.act, got, operatorMay[p])
		}
		if e.Allowed(stranger, inst10, p.obj, p.act) {
			t.Errorf("member of another institution allowed %s/%s", p.obj, p.act)
		}
	}
	// Suspending a key, and reactivating it, is the platform admins' alone,
	// in every institution.
	if !e.Allowed(platformAdmin, inst10, "keys", "suspend") {
		t.Error("platform admin denied keys/suspend")
	}
	for _, u := range []int64{admin, operator, stranger} {
		if e.Allowed(u, inst10, "keys", "suspend") {
			t.Errorf("user %d allowed keys/suspend", u)
		}
	}
	// The admin console belongs to platform admins only.
	for _, p := range []perm{{"admin", "read"}, {"admin", "review"}, {"admin", "suspend"}, {"admin", "limits"}} {
		if !e.Allowed(platformAdmin, PlatformDomain, p.obj, p.act) {
			t.Errorf("platform admin denied %s/%s", p.obj, p.act)
		}
		for _, u := range []int64{admin, operator, stranger} {
			if e.Allowed(u, PlatformDomain, p.obj, p.act) {
				t.Errorf("user %d allowed platform %s/%s", u, p.obj, p.act)
			}
		}
	}
	// Removing a membership removes the rights at once.
	must(t, e.SetInstitutionRole(operator, 10, ""))
	if e.Allowed(operator, inst10, "services", "read") {
		t.Error("removed member still allowed")
	}
	// Changing a role replaces it.
	must(t, e.SetInstitutionRole(admin, 10, InstOperator))
	if e.Allowed(admin, inst10, "members", "manage") {
		t.Error("demoted admin still manages members")
	}
	must(t, e.SetPlatformAdmin(platformAdmin, false))
	if e.Allowed(platformAdmin, PlatformDomain, "admin", "read") {
		t.Error("revoked platform admin still allowed")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
