// Package preferences decides, exactly as IO does, whether a service may
// write to a citizen and on which channels. It is pure logic: the gateway
// uses it for sender_allowed, the delivery pipeline for every message.
package preferences

// Modes of service_preferences_settings.
const (
	Legacy = "LEGACY" // per-service blocks only (blocked_inbox_or_channels)
	Auto   = "AUTO"   // every service may write unless the citizen turns it off
	Manual = "MANUAL" // no service may write unless the citizen turns it on
)

// Channels as IO names them in blocked_inbox_or_channels.
const (
	ChannelInbox   = "INBOX"
	ChannelEmail   = "EMAIL"
	ChannelWebhook = "WEBHOOK"
)

// Profile is what the decision needs from a citizen profile.
type Profile struct {
	IsInboxEnabled   bool
	IsEmailEnabled   bool
	IsEmailValidated bool
	IsWebhookEnabled bool
	Mode             string // Legacy, Auto, Manual
	Version          int    // service_preferences_settings.version
	// Blocked counts in LEGACY only, as in IO. Leaving LEGACY for AUTO
	// turns it into per-service preferences (the citizen API does it in
	// the same transaction), so no block is lifted by the switch.
	Blocked map[string][]string // service id (public) → blocked channels (LEGACY)
}

// ServicePreference is the citizen's per-service choice. It counts only when
// its SettingsVersion equals the profile's Version: changing mode bumps the
// version and so invalidates older choices.
type ServicePreference struct {
	IsInboxEnabled   bool
	IsEmailEnabled   bool
	IsWebhookEnabled bool
	SettingsVersion  int
}

// Decision says where a message from a service may go.
type Decision struct {
	Inbox   bool // sender_allowed: the message may enter the inbox
	Email   bool // an e-mail notice may be sent
	Webhook bool // a push notification may be sent
}

// Decide applies IO's rules. profile nil means the citizen has no profile
// (nothing is allowed). pref may be nil (no per-service choice).
// requireSecure is the message's (or service's) require_secure_channels.
func Decide(profile *Profile, serviceID string, pref *ServicePreference, requireSecure bool) Decision {
	if profile == nil || !profile.IsInboxEnabled {
		return Decision{}
	}
	if pref != nil && pref.SettingsVersion != profile.Version {
		pref = nil // stale: made under an older mode
	}
	var d Decision
	switch profile.Mode {
	case Auto, Manual:
		def := profile.Mode == Auto
		d.Inbox, d.Email, d.Webhook = def, def, def
		if pref != nil {
			d.Inbox, d.Email, d.Webhook = pref.IsInboxEnabled, pref.IsEmailEnabled, pref.IsWebhookEnabled
		}
	default: // LEGACY
		blocked := map[string]bool{}
		for _, c := range profile.Blocked[serviceID] {
			blocked[c] = true
		}
		d.Inbox, d.Email, d.Webhook = !blocked[ChannelInbox], !blocked[ChannelEmail], !blocked[ChannelWebhook]
	}
	if !d.Inbox {
		// No inbox, no notifications: there would be nothing to open.
		return Decision{}
	}
	d.Email = d.Email && !requireSecure && profile.IsEmailEnabled && profile.IsEmailValidated
	d.Webhook = d.Webhook && profile.IsWebhookEnabled
	return d
}
