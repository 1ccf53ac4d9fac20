-- A citizen who left LEGACY for AUTO lost their blocks: AUTO's default is
-- every channel on, and blocked_inbox_or_channels counts only in LEGACY,
-- so a service they had blocked could write to them again. The citizen
-- API now turns the blocks into per-service preferences when the mode
-- changes, as IO does; this does it for the profiles that switched before.
-- preferences_version 1 in AUTO means exactly one mode change, from LEGACY
-- to AUTO (the version starts at 0 in LEGACY and grows by one per change);
-- after a later change IO would have dropped the migrated preferences
-- too. A choice the citizen has made since for a service is kept.
INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled,
		is_email_enabled, is_webhook_enabled, settings_version, updated_at)
	SELECT p.fiscal_code, s.id,
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'INBOX'),
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'EMAIL'),
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'WEBHOOK'),
		p.preferences_version, CURRENT_TIMESTAMP
	FROM profiles p, json_each(CASE WHEN json_valid(p.blocked_inbox_or_channels) THEN p.blocked_inbox_or_channels ELSE '{}' END) b
	JOIN services s ON s.public_id = b.key
	WHERE p.preferences_mode = 'AUTO' AND p.preferences_version = 1
		AND json_type(b.value) = 'array' AND json_array_length(b.value) > 0
	ON CONFLICT (fiscal_code, service_id) DO NOTHING;
