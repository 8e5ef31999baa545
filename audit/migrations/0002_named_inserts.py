from django.db import migrations

# The action override may name an object type with the id "*": it then applies to the rows of
# that type written in the block, which lets a service name an insert before its id exists
# ("rubric.revised" for a new revision, "review.submitted" for a new review).
SQL = """
CREATE OR REPLACE FUNCTION marlin_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := coalesce(nullif(current_setting('marlin.audit', true), ''), '{}')::jsonb;
    kind text := TG_ARGV[0];
    hidden text[] := TG_ARGV[1]::text[];
    before jsonb;
    after jsonb;
    diff jsonb := '{}'::jsonb;
    col text;
    obj text;
    act text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN before := to_jsonb(OLD); END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN after := to_jsonb(NEW); END IF;
    FOR col IN SELECT jsonb_object_keys(coalesce(after, before)) LOOP
        IF before IS NULL OR after IS NULL OR before -> col IS DISTINCT FROM after -> col THEN
            IF col = ANY (hidden) THEN
                diff := diff || jsonb_build_object(col, jsonb_build_array(
                    CASE WHEN before IS NULL THEN NULL ELSE to_jsonb('[hidden]'::text) END,
                    CASE WHEN after IS NULL THEN NULL ELSE to_jsonb('[hidden]'::text) END));
            ELSE
                diff := diff || jsonb_build_object(col, jsonb_build_array(before -> col, after -> col));
            END IF;
        END IF;
    END LOOP;
    IF TG_OP = 'UPDATE' AND diff = '{}'::jsonb THEN
        RETURN NULL;  -- a save that changed nothing is not a change
    END IF;
    obj := coalesce(after, before) ->> 'id';
    IF ctx ->> 'action' IS NOT NULL
       AND ctx ->> 'action_object' IN (kind || ':' || obj, kind || ':*') THEN
        act := ctx ->> 'action';
    ELSE
        act := split_part(kind, '.', 2) || '.' || CASE TG_OP
            WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    END IF;
    INSERT INTO audit_event
        (actor_id, actor, origin, action, object_type, object_id, changes, reason, request_id)
    VALUES ((ctx ->> 'actor_id')::bigint, ctx ->> 'actor', coalesce(ctx ->> 'origin', 'database'),
            act, kind, obj, diff, ctx ->> 'reason', ctx ->> 'request_id');
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
