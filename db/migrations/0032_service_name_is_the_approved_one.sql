-- An approved service's name is the name of its version in force: it is
-- what citizens read in their inbox and in notice mails. Until this
-- version, saving a draft's card also wrote the draft's unreviewed name
-- there; put the approved name back where that happened.
UPDATE services SET name = (SELECT json_extract(v.card, '$.name') FROM service_versions v WHERE v.id = services.live_version_id)
    WHERE live_version_id IS NOT NULL
        AND name <> coalesce((SELECT json_extract(v.card, '$.name') FROM service_versions v WHERE v.id = services.live_version_id), name);
