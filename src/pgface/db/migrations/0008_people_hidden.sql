-- A person can be hidden (not a person to the user, or someone they do not want to see): the
-- people page leaves them out unless asked. The history trigger of 0006 records the whole row
-- (to_jsonb(OLD)), so hiding is undone like any other change to a person.
ALTER TABLE people ADD COLUMN IF NOT EXISTS hidden boolean NOT NULL DEFAULT false;
