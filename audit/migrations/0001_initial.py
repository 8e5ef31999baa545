from django.db import migrations, models

CREATE_TABLE = """
CREATE TABLE audit_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid bigint NOT NULL DEFAULT txid_current(),
    actor_id bigint NULL,
    actor text NULL,
    db_user text NOT NULL DEFAULT current_user,
    origin text NOT NULL DEFAULT 'database',
    action text NOT NULL,
    object_type text NOT NULL,
    object_id text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason text NULL,
    request_id text NULL
);
CREATE INDEX audit_event_object ON audit_event (object_type, object_id, id);
CREATE INDEX audit_event_actor ON audit_event (actor_id, id);
CREATE INDEX audit_event_action ON audit_event (action, id);
CREATE INDEX audit_event_at ON audit_event (at, id);
CREATE INDEX audit_event_request ON audit_event (request_id);

-- Append-only, enforced by PostgreSQL for every client, not only the ORM.
CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change();

-- One entry per changed row. TG_ARGV[0] is the object type ("tasks.task"),
-- TG_ARGV[1] the columns whose values are hidden (only the fact of a change is kept).
CREATE FUNCTION marlin_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF ctx ->> 'action' IS NOT NULL AND ctx ->> 'action_object' = kind || ':' || obj THEN
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

DROP_TABLE = """
DROP FUNCTION IF EXISTS marlin_audit_row() CASCADE;
DROP TABLE IF EXISTS audit_event;
DROP FUNCTION IF EXISTS audit_event_refuse_change();
"""


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.RunSQL(CREATE_TABLE, DROP_TABLE),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("txid", models.BigIntegerField()),
                ("actor_id", models.BigIntegerField(null=True)),
                ("actor", models.TextField(null=True)),
                ("db_user", models.TextField()),
                ("origin", models.TextField()),
                ("action", models.TextField()),
                ("object_type", models.TextField()),
                ("object_id", models.TextField()),
                ("changes", models.JSONField()),
                ("reason", models.TextField(null=True)),
                ("request_id", models.TextField(null=True)),
            ],
            options={"db_table": "audit_event", "ordering": ["id"], "managed": False},
        ),
    ]
