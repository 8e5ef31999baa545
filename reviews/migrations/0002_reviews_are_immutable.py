from django.db import migrations

SQL = """
CREATE FUNCTION review_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a submitted review is immutable' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER review_immutable BEFORE UPDATE ON reviews_review
    FOR EACH ROW EXECUTE FUNCTION review_refuse_update();
"""

REVERSE = """
DROP TRIGGER IF EXISTS review_immutable ON reviews_review;
DROP FUNCTION IF EXISTS review_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
