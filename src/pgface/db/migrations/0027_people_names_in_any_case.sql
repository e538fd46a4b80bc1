-- A name typed in other letter case reaches the person who has it ("ada" is Ada: naming faces
-- "padded name" made a second person beside "Padded Name", without a word; probe http19).
-- People._named asks for the names this expression takes to the same text (lower case, with
-- final sigma as sigma and sharp s as "ss", as Python's casefold has them: lower() alone kept
-- "ΟΔΥΣΣΕΎΣ" from "Οδυσσεύς" and "STRASSE" from "Straße", probes reprobe20 and hostile20), and
-- keeps those that casefold finds equal; this index answers it in a library of many people.
-- people_store.FOLDED_NAME is the same expression.
CREATE INDEX IF NOT EXISTS people_name_folded_idx
    ON people (lower(replace(translate(name, 'ςẞ', 'σß'), 'ß', 'ss')));
