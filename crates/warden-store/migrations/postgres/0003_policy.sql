-- The fleet policy: one current document, versioned so concurrent applies cannot
-- silently overwrite each other (compare-and-swap on the version).
CREATE TABLE policy (
    id          BIGINT  NOT NULL PRIMARY KEY CHECK (id = 1),
    version     BIGINT  NOT NULL,
    document    TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);
