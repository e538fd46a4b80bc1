-- The index of people named in another form (0038), whose predicate missed some format
-- characters names lose (U+0600-0605, U+FFF9-FFFB, U+1D173-1D17A, ...) and the separators
-- Python's split() takes for spaces (U+000B, U+000C, U+001C-001F): "Bob" an older pgface
-- stored with one was not reached by "Bob" typed (probe reprobe38). Its predicate is
-- people_store.PEOPLE_NAMED_IN_ANOTHER_FORM's WHERE, word for word.
DROP INDEX IF EXISTS people_named_in_another_form_idx;
CREATE INDEX people_named_in_another_form_idx ON people (id)
WHERE name IS NOT NULL AND (name IS NOT NFC NORMALIZED
    OR name ~ '[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160]'
    OR name ~ '[\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202f\u205f-\u206f\u2800]'
    OR name ~ '[\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd]'
    OR name ~ '[\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]'
    OR name ~ '[\U000e0000-\U000e01ef]'
    OR name ~ '^\s|\s$|\s\s|[\t-\r\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u3000]');
