-- Every change to people (who, what, when), and what the rows it touched were before it, so
-- `pgface people undo` can write them back exactly.
CREATE TABLE IF NOT EXISTS people_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    kind        text NOT NULL,
    summary     text NOT NULL DEFAULT '',
    payload     jsonb NOT NULL DEFAULT '{}',
    undoable    boolean NOT NULL DEFAULT true,
    undone_at   timestamptz,
    undone_by   text
);
CREATE INDEX IF NOT EXISTS people_changes_at_idx ON people_changes (at);

-- The before-image of each row one change touched; before NULL: the change created the row.
-- Faces keep only their person columns here: never an embedding or a crop.
CREATE TABLE IF NOT EXISTS people_change_rows (
    change_id   bigint NOT NULL REFERENCES people_changes (id) ON DELETE CASCADE,
    tbl         text NOT NULL CHECK (tbl IN ('faces', 'people')),
    row_id      bigint NOT NULL,
    before      jsonb,
    PRIMARY KEY (change_id, tbl, row_id)
);

-- Written by triggers, so no statement of a change can forget to record what it overwrote.
-- A change sets pgface.people_change (transaction-local) to its id; other writes are not kept.
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
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO people_change_rows VALUES (change, 'people', NEW.id, NULL)
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO people_change_rows VALUES (change, 'people', OLD.id, to_jsonb(OLD))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS faces_people_change ON faces;
CREATE TRIGGER faces_people_change AFTER UPDATE OF person_id, assigned_by, clustered_at
    ON faces FOR EACH ROW
    WHEN (OLD.person_id IS DISTINCT FROM NEW.person_id
          OR OLD.assigned_by IS DISTINCT FROM NEW.assigned_by
          OR OLD.clustered_at IS DISTINCT FROM NEW.clustered_at)
    EXECUTE FUNCTION pgface_record_people_change();

DROP TRIGGER IF EXISTS people_people_change ON people;
CREATE TRIGGER people_people_change AFTER INSERT OR UPDATE OR DELETE ON people
    FOR EACH ROW EXECUTE FUNCTION pgface_record_people_change();
