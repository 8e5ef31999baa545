from django.db import migrations

SQL = """
CREATE FUNCTION rubric_version_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rubric versions are immutable: make a revision instead'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER rubric_version_immutable BEFORE UPDATE ON rubrics_rubricversion
    FOR EACH ROW EXECUTE FUNCTION rubric_version_refuse_update();
"""

REVERSE = """
DROP TRIGGER IF EXISTS rubric_version_immutable ON rubrics_rubricversion;
DROP FUNCTION IF EXISTS rubric_version_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("rubrics", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
