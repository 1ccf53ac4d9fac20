-- The sandbox recipient AAAAAA00A00A000A (always allowed for test keys) gets
-- a citizen profile, so a test message to it goes through the whole
-- pipeline and ends PROCESSED in its inbox, where the service's sandbox page
-- shows it. Without a profile every such message would be REJECTED as
-- USER_NOT_FOUND, which tells an integrator trying Sportello for the first
-- time that something is wrong when nothing is. Only the inbox channel is on:
-- the sandbox has no e-mail address and no device to push to.
INSERT OR IGNORE INTO profiles (fiscal_code, email, is_email_enabled, is_email_validated, is_inbox_enabled,
    is_webhook_enabled, preferred_languages, accepted_tos_version, preferences_mode, created_at, updated_at)
VALUES ('AAAAAA00A00A000A', '', 0, 0, 1, 0, '["it_IT"]', 1, 'LEGACY', datetime('now'), datetime('now'));
