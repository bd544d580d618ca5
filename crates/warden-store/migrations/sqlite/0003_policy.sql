-- The fleet policy: one current document, versioned so concurrent applies cannot
-- silently overwrite each other (compare-and-swap on the version).
CREATE TABLE policy (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version     INTEGER NOT NULL,
    document    TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
