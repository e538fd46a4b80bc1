-- The people whose names an older pgface stored in a form no longer made (people_store.
-- PEOPLE_NAMED_IN_ANOTHER_FORM, whose WHERE this predicate is, word for word: the planner
-- takes the index only for the same expression). Few, and looked through at every name that
-- reaches nobody as given: without it each such look-up read the whole table, 40 ms at
-- 20,000 people (1 ms with it), an enrolment of many new folders that many times.
CREATE INDEX IF NOT EXISTS people_named_in_another_form_idx ON people (id)
WHERE name IS NOT NULL AND (name IS NOT NFC NORMALIZED
    OR name ~ '[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f]'
    OR name ~ '[\u2028-\u202f\u205f-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0]'
    OR name ~ '[\U000e0000-\U000e01ef]'
    OR name ~ '^\s|\s$|\s\s|[\t\n\r\u0085\u00a0\u1680\u2000-\u200a\u3000]');
