-- A name typed in other letter case reaches the person who has it ("ada" is Ada: naming faces
-- "padded name" made a second person beside "Padded Name", without a word; probe http19).
-- People._by_name asks for the names lower() takes to the same text, and keeps those equal by
-- Python's casefold; this index answers that in a library of many people.
CREATE INDEX IF NOT EXISTS people_name_lower_idx ON people (lower(name));
