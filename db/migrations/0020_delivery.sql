-- Delivery pipeline support.

-- The retention job finds messages whose content is still stored, oldest
-- first; the partial index holds only those rows, so it shrinks as content
-- is deleted and the job never scans the whole table.
CREATE INDEX messages_content_retention ON messages(created_at) WHERE content IS NOT NULL;

