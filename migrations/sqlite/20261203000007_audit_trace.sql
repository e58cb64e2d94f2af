-- The W3C trace id of the request an audit event belongs to: the caller's trace when it sent a
-- `traceparent`, else one Portcullis started; joins the audit trail to exported spans.
ALTER TABLE audit_events ADD COLUMN trace_id TEXT;
