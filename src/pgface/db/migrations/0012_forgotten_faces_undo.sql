-- What a people change does to the people kept for forgotten photos is undone with it: a merge
-- moves them to the target (undo: back to the source), a person deleted takes them along (undo:
-- back). They get an id, so the change's record can name each one as it does faces and people.
ALTER TABLE forgotten_faces
    ADD COLUMN IF NOT EXISTS id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;

ALTER TABLE people_change_rows DROP CONSTRAINT IF EXISTS people_change_rows_tbl_check;
ALTER TABLE people_change_rows ADD CONSTRAINT people_change_rows_tbl_check
    CHECK (tbl IN ('faces', 'people', 'forgotten_faces'));

CREATE OR REPLACE FUNCTION pgface_record_people_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    change bigint := nullif(current_setting('pgface.people_change', true), '')::bigint;
BEGIN
    IF change IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'faces' THEN
        INSERT INTO people_change_rows VALUES (change, 'faces', OLD.id, jsonb_build_object(
            'person_id', OLD.person_id, 'assigned_by', OLD.assigned_by,
            'clustered_at', OLD.clustered_at))
        ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'forgotten_faces' THEN
        INSERT INTO people_change_rows VALUES (change, 'forgotten_faces', OLD.id, to_jsonb(OLD))
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO people_change_rows VALUES (change, 'people', NEW.id, NULL)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO people_change_rows VALUES (change, 'people', OLD.id, to_jsonb(OLD))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

-- Rows added are not recorded: only a prune or a remove adds them, never a people change.
DROP TRIGGER IF EXISTS forgotten_faces_people_change ON forgotten_faces;
CREATE TRIGGER forgotten_faces_people_change AFTER UPDATE OR DELETE ON forgotten_faces
    FOR EACH ROW EXECUTE FUNCTION pgface_record_people_change();
