CREATE TABLE c (k UInt8, t Tuple(UInt8, String), nt Tuple(a String, b Nullable(Int32)), m Map(String, UInt64),
 mn Map(UInt16, Nullable(String)), at Array(Tuple(String, UInt8)), am Array(Map(String, Int32)),
 tm Tuple(x Map(String, Array(UInt8)), y LowCardinality(String))) ENGINE = MergeTree ORDER BY k;
INSERT INTO c VALUES (1, (1, 'x'), ('a\tb', NULL), {'a': 1, 'b': 18446744073709551615}, map(1, 'one', 2, NULL),
 [('k', 1), ('l', 2)], [{'p': -1}, {'q': 2, 'r': 3}], ({'z': [1, 2]}, 'lc')),
 (2, (0, ''), ('', 5), map('c', 3), map(7, 'x'), [], [], (map('y', []), ''));
