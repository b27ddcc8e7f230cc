-- Reverts 0003_audit_key_id. Rows appended with an HMAC key lose their key id, so the verifier of the
-- earlier release reports the first of them as a hash mismatch.
ALTER TABLE `audit_log` DROP COLUMN `key_id`;
