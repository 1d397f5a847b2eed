CREATE TABLE g (u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64, i8 Int8, i16 Int16, i32 Int32, i64 Int64,
 f32 Float32, f64 Float64, b Bool, s String, ns Nullable(String), a Array(Int32), an Array(Nullable(Int64)),
 d Date, dt DateTime, dt3 DateTime64(3), dec Decimal(10, 2), lc LowCardinality(String)) ENGINE = MergeTree ORDER BY u8;
INSERT INTO g VALUES (1, 65535, 4294967295, 18446744073709551615, -128, -32768, -2147483648, -9223372036854775808,
 1.5, -2.25, true, 'héllo\ttab', NULL, [1, -2, 3], [NULL, 5], '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56.789', 12345.67, 'x'),
 (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, '', 'not null', [], [], '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00.000', -0.01, '');
