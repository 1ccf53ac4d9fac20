package preferences

import "testing"

func TestDecide(t *testing.T) {
	base := func(mode string) *Profile {
		return &Profile{IsInboxEnabled: true, IsEmailEnabled: true, IsEmailValidated: true, IsWebhookEnabled: true, Mode: mode, Version: 1}
	}
	on := &ServicePreference{IsInboxEnabled: true, IsEmailEnabled: false, IsWebhookEnabled: true, SettingsVersion: 1}
	off := &ServicePreference{IsInboxEnabled: false, IsEmailEnabled: true, IsWebhookEnabled: true, SettingsVersion: 1}
	stale := &ServicePreference{IsInboxEnabled: true, IsEmailEnabled: true, IsWebhookEnabled: true, SettingsVersion: 0}

	inboxOff := base(Auto)
	inboxOff.IsInboxEnabled = false
	legacyBlocked := base(Legacy)
	legacyBlocked.Blocked = map[string][]string{"svc": {ChannelEmail}}
	legacyInboxBlocked := base(Legacy)
	legacyInboxBlocked.Blocked = map[string][]string{"svc": {ChannelInbox}}
	notValidated := base(Auto)
	notValidated.IsEmailValidated = false
	pushOff := base(Auto)
	pushOff.IsWebhookEnabled = false

	cases := []struct {
		name   string
		p      *Profile
		pref   *ServicePreference
		secure bool
		want   Decision
	}{
		{"no profile", nil, nil, false, Decision{}},
		{"inbox disabled", inboxOff, nil, false, Decision{}},
		{"legacy default", base(Legacy), nil, false, Decision{true, true, true}},
		{"legacy email blocked", legacyBlocked, nil, false, Decision{true, false, true}},
		{"legacy inbox blocked", legacyInboxBlocked, nil, false, Decision{}},
		{"legacy ignores prefs", base(Legacy), off, false, Decision{true, true, true}},
		{"auto default", base(Auto), nil, false, Decision{true, true, true}},
		{"auto turned off", base(Auto), off, false, Decision{}},
		{"auto with pref", base(Auto), on, false, Decision{true, false, true}},
		{"manual default", base(Manual), nil, false, Decision{}},
		{"manual turned on", base(Manual), on, false, Decision{true, false, true}},
		{"manual stale pref", base(Manual), stale, false, Decision{}},
		{"auto stale pref", base(Auto), off, false, Decision{}},
		{"secure channels: no email", base(Auto), nil, true, Decision{true, false, true}},
		{"email not validated", notValidated, nil, false, Decision{true, false, true}},
		{"push disabled", pushOff, nil, false, Decision{true, true, false}},
	}
	// "auto stale pref": make it stale.
	cases[12].pref = &ServicePreference{IsInboxEnabled: false, SettingsVersion: 0}
	cases[12].want = Decision{true, true, true}
	for _, c := range cases {
		if got := Decide(c.p, "svc", c.pref, c.secure); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}
