//! ClickHouse's value semantics, checked through `quorumhouse local` (real
//! process, real parts). Each expected answer and error code was produced
//! by ClickHouse 26.9 (chDB 4.4) for the same statement; a difference here
//! is a silent wrong answer in a user's dashboard.

mod local_process;

use local_process::{err, local, ok};

// Generated from chDB's answers to the same statements (TSV output).
const ANSWERS: &[(&str, &str)] = &[
    // Strings are bytes: substring, left, right, position, upper, lower; the UTF8 forms
    // count characters.
    ("SELECT upper('héllo'), lower('HÉLLO'), upperUTF8('héllo'), lowerUTF8('HÉLLO'), ucase('abc'), lcase('ABC')",
     "HéLLO\thÉllo\tHÉLLO\théllo\tABC\tabc\n"),
    ("SELECT left('héllo', 1), left('héllo', 3), left('héllo', -3), right('héllo', 2), right('héllo', -3), leftUTF8('héllo', 2), rightUTF8('héllo', -1), left('abc', 5), right('abc', -5)",
     "h\thé\thé\tlo\tllo\thé\téllo\tabc\t\n"),
    ("SELECT substringUTF8('héllo', 2, 2), substringUTF8('héllo', -3), substringUTF8('héllo', -10, 3), substring('hello' FROM 2 FOR 3), SUBSTRING('hello', 2), substr('héllo', 4), mid('hello', 2, 2)",
     "él\tllo\t\tell\tello\tllo\tel\n"),
    ("SELECT position('héllo', 'l'), positionUTF8('héllo', 'l'), POSITION('l' IN 'héllo'), position('héllo', 'l', 5), positionUTF8('héllo', 'o', 2)",
     "4\t3\t4\t5\t5\n"),
    // An alias on a GROUP BY key names it for the query.
    ("SELECT k, count() FROM numbers(10) GROUP BY number % 3 AS k ORDER BY k",
     "0\t4\n1\t3\n2\t3\n"),
    ("SELECT k, j, sum(number) FROM numbers(10) GROUP BY number % 3 AS k, number % 2 AS j HAVING k > 0 ORDER BY k, j",
     "1\t0\t4\n1\t1\t8\n2\t0\t10\n2\t1\t5\n"),
    ("SELECT * FROM (SELECT k, count() AS c FROM numbers(10) GROUP BY intDiv(number, 4) AS k) ORDER BY k",
     "0\t4\n1\t4\n2\t2\n"),
    ("SELECT k, count() FROM numbers(10) GROUP BY number % 2 AS k WITH TOTALS ORDER BY k",
     "0\t5\n1\t5\n\n0\t10\n"),
    // sum / avg of a condition (UInt8 in ClickHouse).
    ("SELECT sum(number = 1), sum(number > 5), avg(number < 3), toTypeName(sum(number > 5)), sum(number IN (SELECT number FROM numbers(4))), sumIf(number > 1, number < 8) FROM numbers(10)",
     "1\t4\t0.3\tUInt64\t4\t6\n"),
    ("SELECT number % 2 AS k, sum(number >= 4) FROM numbers(10) GROUP BY k ORDER BY k",
     "0\t3\n1\t3\n"),
    // hex and visibleWidth.
    ("SELECT hex('abc'), hex(toUInt8(255)), hex(toUInt16(256)), hex(toInt8(-1)), hex(toInt64(-1)), hex(1.0), hex(toFloat32(1.5)), hex(0), hex(toDate('2020-01-01'))",
     "616263\tFF\t0100\tFF\tFFFFFFFFFFFFFFFF\t000000000000F03F\t0000C03F\t00\t4756\n"),
    ("SELECT visibleWidth(21.99), visibleWidth(toFloat32(21.99)), visibleWidth('héllo'), visibleWidth([1, 2]), visibleWidth(NULL), visibleWidth(toDate('2020-01-01'))",
     "5\t5\t5\t5\t4\t10\n"),
    // quantile(s)Exact{Inclusive,Exclusive}; TSV escapes a string's quotes, an array's
    // strings are escaped once, inside their quotes.
    ("SELECT quantilesExactExclusive(0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)(x), quantilesExactInclusive(0.25, 0.5, 0.999)(x), quantilesExact(0.25, 0.5, 0.999)(x), quantileExactExclusive(0.6)(x), quantileExactInclusive(0.6)(x) FROM (SELECT number AS x FROM numbers(1000))",
     "[249.25,499.5,749.75,899.9,949.9499999999999,989.99,998.999]\t[249.75,499.5,998.001]\t[250,500,999]\t599.6\t599.4\n"),
    ("SELECT number % 3 AS k, quantileExactInclusive(0.5)(number), quantilesExactExclusive(0.1, 0.9)(number) FROM numbers(20) GROUP BY k ORDER BY k",
     "0\t9\t[0,18]\n1\t10\t[1,19]\n2\t9.5\t[2,17]\n"),
    ("SELECT quantileExactInclusive(0.5)(x), quantilesExactInclusive(0.5)(x) FROM (SELECT 1 AS x WHERE 0)",
     "nan\t[nan]\n"),
    // NaN sorts beside NULL: after the numbers, before the NULLs (or right after them).
    ("SELECT x FROM (SELECT arrayJoin([1, nan, NULL, 3, -inf]) AS x) ORDER BY x DESC; SELECT x FROM (SELECT arrayJoin([1, nan, NULL, 3, -inf]) AS x) ORDER BY x; SELECT x FROM (SELECT arrayJoin([1, nan, NULL, 3]) AS x) ORDER BY x NULLS FIRST; SELECT x FROM (SELECT arrayJoin([1, nan, NULL, 3]) AS x) ORDER BY x DESC NULLS FIRST; SELECT x FROM (SELECT arrayJoin([1, nan, 3]) AS x) ORDER BY x DESC LIMIT 2",
     "3\n1\n-inf\nnan\n\\N\n-inf\n1\n3\nnan\n\\N\n\\N\nnan\n1\n3\n\\N\nnan\n3\n1\n3\n1\n"),
    // leftPad / rightPad / reverse count bytes, their UTF8 forms characters.
    ("SELECT leftPad('abc', 7, '*'), leftPad('abcdef', 3), lpad('ab', 5, 'xy'), rightPad('abc', 6, '12'), rpad('héllo', 4), leftPadUTF8('héllo', 7, 'é'), rightPadUTF8('hé', 4), reverseUTF8('héllo'), leftPad('x', 3, ''), leftPad('héllo', 7, '*')",
     "****abc\tabc\txyxab\tabc121\thél\tééhéllo\thé  \tolléh\t  x\t*héllo\n"),
    ("SELECT rightPad('abc', 2), rightPad(NULL, 3), leftPad('abc', 5, NULL), leftPad(toNullable('a'), 3), reverse(['a','b']), reverse(NULL), reverse('abc'), reverse([1, 2, 3])",
     "ab\t\\N\t\\N\t  a\t['b','a']\t\\N\tcba\t[3,2,1]\n"),
    // NULLs sort last in both directions unless NULLS FIRST is asked for.
    ("SELECT x FROM (SELECT arrayJoin([1, NULL, 3]) AS x) ORDER BY x DESC; SELECT x FROM (SELECT arrayJoin([1, NULL, 3]) AS x) ORDER BY x; SELECT x FROM (SELECT arrayJoin([1, NULL, 3]) AS x) ORDER BY x DESC NULLS FIRST",
     "3\n1\n\\N\n1\n3\n\\N\n\\N\n3\n1\n"),
    // quantile / median: ClickHouse's reservoir sample, exact (interpolated) up to 8,192
    // values; Float64 for numbers, the argument's own type for dates and decimals.
    ("SELECT quantile(0.9)(number), median(number), quantiles(0.1, 0.5, 0.99)(number), toTypeName(median(number)), quantile(x) FROM (SELECT number, number / 3 AS x FROM numbers(10))",
     "8.1\t4.5\t[0.9,4.5,8.91]\tFloat64\t1.5\n"),
    ("SELECT number % 3 AS k, quantile(0.25)(number), median(toInt8(number) - 10) FROM numbers(20) GROUP BY k ORDER BY k",
     "0\t4.5\t-1\n1\t5.5\t0\n2\t5.75\t-0.5\n"),
    ("SELECT quantile(0.9)(d), median(dt), quantile(0.3)(toDecimal64(number, 3)), toTypeName(quantile(0.3)(toDecimal64(number, 3))) FROM (SELECT number, toDate('2020-01-01') + number AS d, toDateTime('2020-01-01 00:00:00', 'UTC') + number AS dt FROM numbers(10))",
     "2020-01-09\t2020-01-01 00:00:04\t2.699\tDecimal(18, 3)\n"),
    ("SELECT quantile(0.5)(x), median(x) FROM (SELECT arrayJoin([1, nan, 3, nan, nan]) AS x)",
     "2\t2\n"),
    ("SELECT quantile(0.9)(number), median(number) FROM numbers(0)",
     "nan\tnan\n"),
    ("SELECT quantile(0.9)(n), median(n) FROM (SELECT if(number > 100, number, NULL) AS n FROM numbers(10))",
     "\\N\t\\N\n"),
    ("SELECT quantile(0.5)(n) FROM (SELECT if(number > 5, number, NULL) AS n FROM numbers(10))",
     "7.5\n"),
    ("SELECT quantile(0.5)(x) FROM (SELECT arrayJoin([toDateTime64('2020-01-01 00:00:03.123', 3, 'UTC'), toDateTime64('2020-01-01 00:00:00.123', 3, 'UTC'), toDateTime64('2020-01-01 00:00:02.123', 3, 'UTC'), toDateTime64('2020-01-01 00:00:01.123', 3, 'UTC')]) AS x)",
     "2020-01-01 00:00:01.623\n"),
    ("SELECT median(toDecimal32(number, 2) - 5) FROM numbers(4)",
     "-3.5\n"),
    ("SELECT 'it''s', toString((1, 'x')), ['a''b', 'c\\td'], 'tab\\there', 'back\\\\slash', [toDate('2020-01-01')]",
     "it\\'s\t(1,\\'x\\')\t['a\\'b','c\\td']\ttab\\there\tback\\\\slash\t['2020-01-01']\n"),
    // MATERIALIZED and ALIAS columns: computed on insert, left out of `*`.
    ("CREATE TABLE mat (t DateTime, d Date MATERIALIZED toDate(t), a UInt64 ALIAS toUInt64(t) * 2, k UInt8 DEFAULT 7) ENGINE = MergeTree ORDER BY t; INSERT INTO mat VALUES ('2010-01-01 00:00:00', 1); INSERT INTO mat (t) VALUES ('2011-01-01 00:00:00'); SELECT * FROM mat ORDER BY t; SELECT mat.*, d, a FROM mat ORDER BY t; SELECT name, default_kind, default_expression FROM system.columns WHERE table = 'mat' ORDER BY position",
     "2010-01-01 00:00:00\t1\n2011-01-01 00:00:00\t7\n2010-01-01 00:00:00\t1\t2010-01-01\t2524608000\n2011-01-01 00:00:00\t7\t2011-01-01\t2587680000\nt\t\t\nd\tMATERIALIZED\ttoDate(t)\na\tALIAS\ttoUInt64(t) * 2\nk\tDEFAULT\t7\n"),
    // IN (SELECT …) outside WHERE: a set of the subquery's non-NULL values.
    ("SELECT number IN (SELECT number FROM numbers(1, 3)) AS r, number NOT IN (SELECT nullIf(number, 2) FROM numbers(1,3)), nullIf(number, 4) IN (SELECT nullIf(number, 2) FROM numbers(1, 3)), number IN (SELECT 1 WHERE 0) FROM numbers(5)",
     "0\t1\t0\t0\n1\t0\t1\t0\n1\t1\t0\t0\n1\t0\t1\t0\n0\t1\t\\N\t0\n"),
    ("SELECT countIf(number IN (SELECT number * 2 FROM numbers(100))), number % 2 IN (SELECT 1) AS k FROM numbers(50) GROUP BY k ORDER BY k",
     "25\t0\n0\t1\n"),
    ("SELECT toString(number) IN (SELECT toString(number) FROM numbers(1, 3)) AS res, number IN (SELECT toUInt8(number + 1) FROM numbers(2) WHERE number IN (SELECT 1)) FROM numbers(4)",
     "0\t0\n1\t0\n1\t1\n1\t0\n"),
    // Inline aliases and alias chains; INTERVAL with a computed count, in quarters,
    // below a second; quarters and relative numbers; outer-join defaults of
    // computed columns (NULL only where ClickHouse's type is Nullable).
    ("SELECT (toDate('2017-01-31') AS base) + INTERVAL number MONTH AS d, toDateTime(d) AS t, toQuarter(d) AS qd, toStartOfQuarter(t), toRelativeQuarterNum(d) - toRelativeQuarterNum(base), toRelativeWeekNum(d), toRelativeMonthNum(t) FROM numbers(3)",
     "2017-01-31\t2017-01-31 00:00:00\t1\t2017-01-01\t0\t2457\t24205\n2017-02-28\t2017-02-28 00:00:00\t1\t2017-01-01\t0\t2461\t24206\n2017-03-31\t2017-03-31 00:00:00\t1\t2017-01-01\t0\t2465\t24207\n"),
    ("SELECT number + 1 AS d, toString(d) AS t, concat(t, 'x') AS u, length(u) FROM numbers(2)",
     "1\t1\t1x\t2\n2\t2\t2x\t2\n"),
    ("SELECT (1 AS a) + (a + 1 AS b), b * 2, sum(number AS x) + 0 FROM numbers(3)",
     "3\t4\t3\n"),
    ("SELECT toDateTime('2000-01-01 12:00:00') + INTERVAL 1234567 MILLISECOND AS x, toTypeName(x), toDateTime('2016-02-29 01:02:03') - INTERVAL 1 QUARTER, toDateTime('2017-10-30 08:18:19') - INTERVAL number * 2 DAY FROM numbers(2)",
     "2000-01-01 12:20:34.567\tDateTime64(3)\t2015-11-29 01:02:03\t2017-10-30 08:18:19\n2000-01-01 12:20:34.567\tDateTime64(3)\t2015-11-29 01:02:03\t2017-10-28 08:18:19\n"),
    ("SELECT l.k, r.d, r.s FROM (SELECT number AS k FROM numbers(3)) AS l LEFT JOIN (SELECT number AS k, toDate('2020-01-01') + number AS d, toString(number) AS s FROM numbers(1)) AS r ON l.k = r.k ORDER BY l.k",
     "0\t2020-01-01\t0\n1\t1970-01-01\t\n2\t1970-01-01\t\n"),
    ("SELECT toRelativeDayNum(toDate('2020-01-01')), toRelativeHourNum(toDateTime('2020-01-01 05:00:00')), toRelativeYearNum(toDate('2020-05-01')), toDate('2020-01-31') + toIntervalMonth(1)",
     "18262\t438293\t2020\t2020-02-29\n"),
    // Arrays: an index outside is the element's default; lambdas come first.
    ("SELECT [1, 2][5], ['a'][3], arrayElement([1, 2], -1), [1, 2, 3][0], [[1, 2], [3]][2][1], [1, NULL][5], splitByChar(',', 'a,b')[3] = ''",
     "0\t\t2\t0\t3\t\\N\t1\n"),
    ("SELECT arrayMap(x -> x * 2, [1, 2, 3]), arrayFilter(x -> x > 1, [1, 2, 3]), arrayFilter(x -> 1, [1, 2]), arrayMap(x -> x + number, [1, 2]) FROM numbers(2)",
     "[2,4,6]\t[2,3]\t[1,2]\t[1,2]\n[2,4,6]\t[2,3]\t[1,2]\t[2,3]\n"),
    ("SELECT arrayFirst(x -> x > 5, [1, 2, 3]), arrayFirst(x -> x > 1, [1, 2, 3]), arrayLast(x -> x > 1, [1, 2, 3]), arrayFirst(x -> 1, emptyArrayString()), arrayCount(x -> x > 1, [1, 2, 3]), toTypeName(arrayCount(x -> x > 1, [1, 2, 3])), arrayExists(x -> x > 1, [1, 2, 3]), toTypeName(arrayExists(x -> x > 1, [1, 2, 3])), arrayAll(x -> x > 1, [1, 2, 3]), arrayAll(x -> x > 0, [1, 2, 3])",
     "0\t2\t3\t\t2\tUInt32\t1\tUInt8\t0\t1\n"),
    ("SELECT transform(number, [0, 2], ['a', 'b'], 'z'), transform(number, [0, 2], [10, 20]), range(number % 3), toTypeName(emptyArrayUInt8()) FROM numbers(3)",
     "a\t10\t[]\tArray(UInt8)\nz\t1\t[0]\tArray(UInt8)\nb\t20\t[0,1]\tArray(UInt8)\n"),
    // A hash join builds on the right and streams the left in its order,
    // unmatched rows in place (no ORDER BY).
    ("SELECT number, j FROM numbers(6) AS l LEFT JOIN (SELECT number * 2 AS number, 1 AS j FROM numbers(3)) AS r USING number",
     "0\t1\n1\t0\n2\t1\n3\t0\n4\t1\n5\t0\n"),
    // USING: one key column holding whichever side's key the row has,
    // listed first by `*`; a WHERE may name it.
    ("SELECT * FROM (SELECT 1 AS a, 2 AS b) AS l RIGHT JOIN (SELECT 4 AS a, 5 AS b) AS r USING (a)",
     "4\t0\t5\n"),
    ("SELECT *, 7 FROM (SELECT 2 AS x, 1 AS a, 3 AS b) AS l INNER JOIN (SELECT 5 AS y, 1 AS a, 3 AS b) AS r USING (b, a)",
     "3\t1\t2\t5\t7\n"),
    ("SELECT id, name FROM (SELECT number AS id, 'l' AS name FROM numbers(2)) AS a FULL JOIN (SELECT number + 1 AS id, 'r' AS x FROM numbers(2)) AS b USING (id) WHERE id > 0 ORDER BY id",
     "1\tl\n2\t\n"),
    ("SELECT * FROM (SELECT number AS k FROM numbers(3)) AS l LEFT JOIN (SELECT number + 1 AS k, 'r' AS v FROM numbers(1)) AS zz USING (k) ORDER BY k",
     "0\t\n1\tr\n2\t\n"),
    ("SELECT l.k, r.n, r.c FROM (SELECT number AS k FROM numbers(2)) AS l LEFT JOIN (SELECT number AS k, nullIf(number, 0) AS n, CASE WHEN number = 0 THEN 'z' END AS c FROM numbers(1)) AS r ON l.k = r.k ORDER BY l.k",
     "0\t\\N\tz\n1\t\\N\t\\N\n"),
    ("SELECT toRelativeQuarterNum(toDate('2017-01-01')), toRelativeMonthNum(toDate('2017-01-01')), toRelativeWeekNum(toDate('1970-01-05')), toStartOfQuarter(toDateTime('2017-08-15 10:00:00')), toQuarter(toDate('2017-12-31'))",
     "8068\t24205\t1\t2017-07-01\t4\n"),
    ("WITH 1 AS a, a + 1 AS b SELECT b * 10",
     "20\n"),
    ("SELECT length(groupArray(3)(number)), length(groupUniqArray(2)(number % 5)), length(groupUniqArray(10)(number % 5)) FROM numbers(100)", "3\t2\t5\n"),
    ("SELECT number FROM numbers(10) GROUP BY number ORDER BY number LIMIT 7, 18446744073709551615", "7\n8\n9\n"),
    ("CREATE TABLE ic (a UInt8, b Decimal(10, 2), c Int32, d String, e Float32) ENGINE = MergeTree ORDER BY tuple(); INSERT INTO ic SELECT 300, 2 / 3, -1.9, 1.5, 1; INSERT INTO ic SELECT '300', '-0.666', '7', toDate('2020-01-02'), '2.5'; SELECT * FROM ic ORDER BY c",
     "44\t0.66\t-1\t1.5\t1\n44\t-0.66\t7\t2020-01-02\t2.5\n"),
    ("CREATE TABLE ic3 (a UInt8, b UInt8 DEFAULT a * 100) ENGINE = MergeTree ORDER BY tuple(); INSERT INTO ic3 (a) VALUES (3); SELECT * FROM ic3",
     "3\t44\n"),
    ("CREATE TABLE lc (k UInt64, s LowCardinality(Nullable(String))) ENGINE = MergeTree ORDER BY k; INSERT INTO lc SELECT number, if(number % 11 = 0, NULL, toString(number % 700)) FROM numbers(20000); INSERT INTO lc SELECT number, 'x' FROM numbers(5); OPTIMIZE TABLE lc FINAL; SELECT count(s), uniqExact(s), sum(length(s)), countIf(s IS NULL), min(s), max(s) FROM lc",
     "18186\t701\t51649\t1819\t0\tx\n"),
    ("CREATE TABLE codecs (a Float64 CODEC(Gorilla, ZSTD(3)), b DateTime CODEC(DoubleDelta, LZ4), d Nullable(Int32) CODEC(Delta(2), ZSTD), f Array(UInt32) CODEC(T64, LZ4), k UInt64) ENGINE = MergeTree ORDER BY tuple(); INSERT INTO codecs SELECT number / 3, toDateTime(1700000000 + number * 10), if(number % 5 = 0, NULL, number), [number, number * 2], number * number FROM numbers(100000); OPTIMIZE TABLE codecs FINAL; SELECT sum(a), max(b), sum(d), sum(length(f)), sum(k) FROM codecs; SELECT compression_codec FROM system.columns WHERE table = 'codecs' AND name = 'a'",
     "1666650000\t2023-11-26 11:59:50\t4000000000\t200000\t333328333350000\nCODEC(Gorilla(8), ZSTD(3))\n"),
    ("SELECT CAST(300 AS UInt8), CAST(-1 AS UInt64), CAST(1.9 AS Int32), CAST(-1.9 AS Int32)", "44\t18446744073709551615\t1\t-1\n"),
    ("SELECT CAST('300' AS UInt8), CAST(' 5' AS String), 5::UInt16, toTypeName(5::UInt16), CAST(1, 'UInt8')", "44\t 5\t5\tUInt16\t1\n"),
    // arrayDistinct leaves NULLs out and keeps the first occurrence's order.
    ("SELECT arrayDistinct([1, 2, NULL, 5, 2, NULL]), arrayDistinct(['b', 'a', 'b']), length(arrayDistinct([NULL, NULL])), arrayDistinct([[1], [2], [1]])",
     "[1,2,5]\t['b','a']\t0\t[[1],[2]]\n"),
    ("SELECT arrayZip(['a', 'b'], ['d', 'e'], [1, 2]), arrayZip(range(number), arrayMap(x -> toString(x), range(number))) FROM numbers(3)",
     "[('a','d',1),('b','e',2)]\t[]\n[('a','d',1),('b','e',2)]\t[(0,'0')]\n[('a','d',1),('b','e',2)]\t[(0,'0'),(1,'1')]\n"),
    // Literal types: the smallest type holding the value, through materialize / toNullable and branches.
    ("SELECT toTypeName(toNullable(1)), toTypeName(materialize(300)), materialize(1) + 1, toTypeName(materialize(1) + 1), toTypeName(toNullable(toNullable(materialize(1)))), 1 AS x, toTypeName(x), toTypeName(-1), toTypeName(if(number > 0, 1, -1)), toTypeName(ifNull(NULL, 1)) FROM numbers(1)",
     "Nullable(UInt8)\tUInt16\t2\tUInt16\tNullable(UInt8)\t1\tUInt8\tInt8\tInt16\tUInt8\n"),
    // topK: most frequent first, NULLs skipped.
    ("SELECT topK(2)(x), topK(x) FROM (SELECT arrayJoin(['b', NULL, 'a', 'a', 'c', 'b', 'a']) AS x)",
     "['a','b']\t['a','b','c']\n"),
    // DateTime64 to whole seconds (floored) and to integer ticks (truncated toward zero).
    ("SELECT toStartOfSecond(toDateTime64('2019-09-16 19:20:11.999', 3, 'UTC')), toUnixTimestamp64Milli(toDateTime64('1969-12-31 23:59:59.9999', 6, 'UTC')), toStartOfSecond(toDateTime64('1969-12-31 23:59:59.9999', 6, 'UTC'))",
     "2019-09-16 19:20:11.000\t0\t1969-12-31 23:59:59.000000\n"),
    ("WITH toDateTime64('2019-09-16 19:20:12.345678910', 6, 'UTC') AS x SELECT materialize(x) AS dt64, toUnixTimestamp64Milli(dt64), toUnixTimestamp64Micro(dt64), toUnixTimestamp64Nano(dt64), toTypeName(toUnixTimestamp64Nano(dt64))",
     "2019-09-16 19:20:12.345678\t1568661612345\t1568661612345678\t1568661612345678000\tInt64\n"),
    // formatDateTime: ClickHouse 26's specifiers (values from chDB); a Date is its own day,
    // an instant is shown in the zone argument; NULL in, NULL out.
    ("SELECT formatDateTime(toDateTime('2018-01-02 22:33:44'), '%F %T %a %W %b %M %e %j %p %r %u %w %Q %z'), formatDateTime(toDate('2010-01-03'), '%G-%V %g %D %I %k'), DATE_FORMAT(toDateTime64('1969-12-31 23:59:59.5', 1, 'UTC'), '%Y%m%d %H%i%S.%f')",
     "2018-01-02 22:33:44 Tue Tuesday Jan January 2 002 PM 10:33 PM 2 2 1 +0000\t2009-53 09 01/03/10 12 00\t19691231 235959.500000\n"),
    ("SELECT formatDateTime(toDateTime('2018-01-02 22:33:44'), '%F %T %z', 'Asia/Kolkata'), formatDateTime(materialize(toDate('2010-01-03')), '%F %H', 'Asia/Tokyo'), formatDateTime(toNullable(toDate('2010-01-01')), '%Y') AS n, toTypeName(n), formatDateTime(NULL, '%F')",
     "2018-01-03 04:03:44 +0530\t2010-01-03 00\t2010\tNullable(String)\t\\N\n"),
    // rand() is a UInt32 per row (was DataFusion's Float64 below 1: `rand() % 100` was 0).
    ("SELECT toTypeName(rand()), toTypeName(rand32(1)), toTypeName(rand64()), toTypeName(randCanonical()), toTypeName(0 * rand()), uniqExact(rand() % 100) = 100, uniqExact(rand()) > 9990, uniqExact(rand64() % 1000) > 900, min(randCanonical()) >= 0, max(randCanonical()) < 1 FROM numbers(10000)",
     "UInt32\tUInt32\tUInt64\tFloat64\tUInt64\t1\t1\t1\t1\t1\n"),
    // A column declared by its DEFAULT alone takes the expression's ClickHouse type; defaults
    // are computed in dependency order, wherever declared (compat 00253).
    ("CREATE TEMPORARY TABLE t (a UInt32, c DEFAULT b * 2, b DEFAULT a + 1, d DEFAULT 0, e DEFAULT -1, s MATERIALIZED toString(a), i DEFAULT identity(d)); INSERT INTO t (a) VALUES (10); SELECT a, b, c, d, e, s, i, toTypeName(b), toTypeName(c), toTypeName(d), toTypeName(e), toTypeName(s), toTypeName(i) FROM t",
     "10\t11\t22\t0\t-1\t10\t0\tUInt64\tUInt64\tUInt8\tInt8\tString\tUInt8\n"),
    ("CREATE TEMPORARY TABLE t (a UInt8, c UInt8 DEFAULT b + 1, b UInt8 DEFAULT a * 2); INSERT INTO t (a) VALUES (3); SELECT * FROM t",
     "3\t7\t6\n"),
    // addMonths / addQuarters / addYears and subtract…: calendar units, the day clamped (compat 01352).
    ("SELECT addMonths(toDate('2017-01-31'), 1), addYears(toDateTime('2016-02-29 01:02:03'), 1), subtractMonths(toDate('2017-03-31'), 1), addMonths(materialize(toDateTime('2017-11-05 08:07:47')), 1.), toTypeName(addQuarters(toDate('2017-11-30'), 1)), subtractYears(toDateTime64('2020-02-29 10:00:00.123', 3, 'UTC'), 1)",
     "2017-02-28\t2017-02-28 01:02:03\t2017-02-28\t2017-12-05 08:07:47\tDate\t2019-02-28 10:00:00.123\n"),
    // LIMIT BY without ORDER BY keeps each key's first rows in arrival order (compat 00612).
    ("SELECT k, v FROM (SELECT number % 3 AS k, number AS v FROM numbers(10)) LIMIT 2 BY k",
     "0\t0\n1\t1\n2\t2\n0\t3\n1\t4\n2\t5\n"),
    ("CREATE TABLE lb (k String, v UInt32) ENGINE = MergeTree ORDER BY tuple(); INSERT INTO lb VALUES ('b', 1), ('a', 2), ('b', 3), ('c', 4), ('a', 5), ('b', 6), ('a', 7); SELECT k, v FROM lb LIMIT 2 BY k",
     "b\t1\na\t2\nb\t3\nc\t4\na\t5\n"),
    ("SELECT number % 4 AS k, count() OVER () AS c, number FROM numbers(8) LIMIT 1 BY k",
     "0\t8\t0\n1\t8\t1\n2\t8\t2\n3\t8\t3\n"),
    // LIMIT BY an arrayJoin's alias.
    ("SELECT arrayJoin([count(), count() + 1]) AS x FROM numbers(10) ORDER BY x LIMIT 1 BY x",
     "10\n11\n"),
    ("SELECT arrayJoin([1, 1, 2, 3, 3]) AS x, number AS n FROM numbers(2) ORDER BY x, n DESC LIMIT 1, 1 BY x LIMIT 2",
     "1\t1\n2\t0\n"),
    // uniq of several values skips rows with a NULL, of a tuple counts them; uniqUpTo; a grouped
    // uniq of three columns over 100,000 rows (a struct distinct count charged 26 GiB).
    ("SELECT uniqExact(a, b), uniqExact((a, b)), uniq(a), uniqExact(a) FROM (SELECT arrayJoin([1, 1, 2, NULL]) AS a, 'x' AS b)",
     "2\t3\t2\t2\n"),
    ("SELECT uniqUpTo(5)(number % 10), uniqUpTo(20)(number % 10), toTypeName(uniqUpTo(5)(number)) FROM numbers(100)",
     "6\t10\tUInt64\n"),
    ("SELECT k, uniq(x, y, z), uniqExact((x, y, z)), uniqUpTo(5)(x, y, z), count() AS c FROM (SELECT (number + 0x8ffcbd8257219a26) * 0x66bb3430c06d2353 % 131 AS k, number % 10 AS x, intDiv(number, 10) % 10 AS y, toString(intDiv(number, 100) % 10) AS z FROM system.numbers LIMIT 100000) GROUP BY k ORDER BY c DESC, k ASC LIMIT 2",
     "17\t610\t610\t6\t766\n52\t608\t608\t6\t766\n"),
    // Decimal arithmetic: the widest operand's storage size, scales by operation, exact division.
    ("SELECT toDecimal32(1, 2) * toDecimal32(1, 1) AS x, toTypeName(x), toDecimal32(1, 2) / toDecimal32(3, 1) AS y, toTypeName(y), toInt32(5) / toDecimal32(3, 3), toDecimal64(5, 2) - 7, toTypeName(toDecimal64(5, 2) - 7), toDecimal32(-7, 0) / 2, toDecimal32(1.5, 1) / 2.0, toTypeName(toDecimal32(1.5, 1) / 2.0)",
     "1\tDecimal(9, 3)\t0.33\tDecimal(9, 2)\t1.666\t-2\tDecimal(18, 2)\t-3\t0.75\tFloat64\n"),
    ("SELECT sum(x), toTypeName(sum(x)), avg(x) FROM (SELECT toDecimal32(number, 2) / 3 AS x FROM numbers(4))",
     "1.99\tDecimal(38, 2)\t0.4975\n"),
    ("SELECT CAST('1.555' AS Decimal(10, 2)), CAST(-1.555 AS Decimal(10, 2)), toDecimal32(1.555, 2), toDecimal64('-0.5', 3), toTypeName(toDecimal32(2, 4))", "1.55\t-1.55\t1.55\t-0.5\tDecimal(9, 4)\n"),
    ("SELECT CAST(NULL AS Nullable(Decimal(7, 2))), CAST('2020-01-02 03:04:05' AS DateTime), CAST('2020-01-02' AS Date), CAST(1.5 AS String)", "\\N\t2020-01-02 03:04:05\t2020-01-02\t1.5\n"),
    ("SELECT toUInt32(toDate('2020-01-01')), CAST(toDate('2020-01-01') AS UInt32), toInt64(toDateTime('2020-01-01 00:00:00'))", "18262\t18262\t1577836800\n"),
    ("SELECT toUInt8OrZero('300'), toUInt8OrNull('300'), toInt8OrZero('-128'), toUInt8OrZero(' 5'), toUInt8OrZero('+5'), toUInt8OrZero('-5')", "0\t\\N\t-128\t0\t5\t0\n"),
    ("SELECT toFloat64OrZero('1e3'), toFloat64OrZero('inf'), toFloat64OrNull(''), toUInt64OrZero('0x10'), toInt32OrNull('-2147483648')", "1000\tinf\t\\N\t0\t-2147483648\n"),
    ("SELECT toDateOrZero('2020-01-01'), toDateOrNull('x'), toDateTimeOrZero('bad'), toDateTimeOrNull('2020-01-01 00:00:00')", "2020-01-01\t\\N\t1970-01-01 00:00:00\t2020-01-01 00:00:00\n"),
    // Hexadecimal numbers (0xFF was bytes printed as `ff`) and X'..' strings.
    ("SELECT 0xFF, 0x123p4, -0x1p-1022, 0x123456789ABCDEF01, x'4142', toTypeName(0x123p4), 0xA.8p1, 0xff + 1, toTypeName(0xff + 1), intDiv(materialize(toInt32(1)), 0x100000000)",
     "255\t4656\t-2.2250738585072014e-308\t20988295479420645000\tAB\tFloat64\t21\t256\tUInt16\t0\n"),
    ("SELECT inf, -inf, nan, INF, toTypeName(nan)", "inf\t-inf\tnan\tinf\tFloat64\n"),
    ("SELECT nan = nan, nan != nan, 1 < nan, nan > 1, nan >= nan, -0. = 0., -0. < 0.", "0\t1\t0\t0\t0\t1\t0\n"),
    ("SELECT x, x = x, x < 1 FROM (SELECT arrayJoin([1., nan, -inf]) AS x) ORDER BY x", "-inf\t1\t1\n1\t1\t0\nnan\t0\t0\n"),
    ("SELECT isFinite(1 / 0), isInfinite(-1 / 0), isNaN(0 / 0), isFinite(5), isNaN(1.)", "0\t1\t1\t1\t0\n"),
    ("SELECT assumeNotNull(toNullable(3))", "3\n"),
    ("SELECT count() FROM numbers(10) WHERE toFloat64(number) / 0 > 1", "9\n"),    ("SELECT toUInt8(200) + toUInt8(100), toTypeName(toUInt8(200) + toUInt8(100)), toUInt8(1) - toUInt8(2), toTypeName(toUInt8(1) - toUInt8(2))", "300\tUInt16\t-1\tInt16\n"),
    ("SELECT toUInt64(1) - toUInt64(2), toInt64(9223372036854775807) * 2, toUInt64(18446744073709551615) + 1, toTypeName(toUInt32(3) * toUInt32(3))", "-1\t-2\t0\tUInt64\n"),
    ("SELECT 1 + 1, toTypeName(1 + 1), toTypeName(1 + -1), 255 + 1, toTypeName(300 * 300)", "2\tUInt16\tInt16\t256\tUInt32\n"),
    ("SELECT -toUInt8(5), toTypeName(-toUInt8(5)), -toUInt64(1), toTypeName(-toUInt64(1))", "-5\tInt16\t-1\tInt64\n"),
    ("SELECT toInt8(-7) % toUInt8(3), toTypeName(toInt8(-7) % toUInt8(3)), toUInt64(5) % toInt64(-3), toTypeName(toUInt64(5) % toInt64(-3)), toUInt32(7) % -2, toTypeName(toUInt32(7) % -2)", "-1\tInt16\t2\tUInt64\t1\tUInt8\n"),
    ("SELECT intDiv(10., 4), toTypeName(intDiv(10., 4)), intDiv(-7.5, 2), intDiv(10, 4.), toTypeName(intDiv(10, 4.)), toTypeName(intDiv(toFloat32(9), toUInt8(2)))", "2\tInt64\t-3\t2\tInt8\tInt32\n"),
    ("SELECT number * 3 + 1 AS x, toTypeName(x), number % 3 AS k, toTypeName(k) FROM numbers(2)", "1\tUInt64\t0\tUInt8\n4\tUInt64\t1\tUInt8\n"),
    ("SELECT 1.5 + toFloat32(1.25), toTypeName(1.5 + toFloat32(1.25))", "2.75\tFloat64\n"),
    ("SELECT splitByString(', ', 'a, b, c'), splitByString('', 'abc'), splitByChar(',', 'a,,b'), arrayStringConcat(['a', 'b'], '-'), arrayStringConcat(['x', 'y'])", "['a','b','c']\t['a','b','c']\t['a','','b']\ta-b\txy\n"),
    ("SELECT isZeroOrNull(0), isZeroOrNull(NULL), isZeroOrNull(1), isZeroOrNull(toNullable(0.))", "1\t1\t0\t1\n"),
    ("SELECT count() FROM (SELECT CAST(NULL AS Nullable(String)) AS x) WHERE isZeroOrNull(x = 'a')", "1\n"),
    ("CREATE TEMPORARY TABLE t (x String NULL, y Int32 NOT NULL); INSERT INTO t VALUES (NULL, 1); SELECT x, y, x = 'a' FROM t", "\\N\t1\t\\N\n"),
    ("SELECT count() FROM numbers(100) WHERE (number + 5 >= 5 AND number + 6 >= 6) OR number * 2 < 3", "100\n"),
    ("WITH 1 AS x SELECT x, x + 1", "1\t2\n"),
    ("WITH toDate('2021-09-12') AS d SELECT d, toLastDayOfMonth(d), last_day(toDate('2020-02-10'))", "2021-09-12\t2021-09-30\t2020-02-29\n"),
    ("WITH 5 AS n SELECT number FROM numbers(10) WHERE number > n ORDER BY number", "6\n7\n8\n9\n"),
    ("WITH 2 AS k SELECT * FROM (SELECT k * number AS y FROM numbers(3)) ORDER BY y", "0\n2\n4\n"),
    ("WITH (SELECT max(number) FROM numbers(7)) AS m, t AS (SELECT 10 AS v) SELECT m, v FROM t", "6\t10\n"),
    ("WITH 3 AS number SELECT number FROM numbers(2)", "3\n3\n"),
    ("WITH 1 AS x SELECT * FROM (WITH 2 AS x SELECT x)", "2\n"),
    ("SELECT number FROM numbers(3) GROUP BY number WITH ROLLUP ORDER BY number", "0\n0\n1\n2\n"),
    ("SELECT toDate('1070-01-01'), toDate('2200-01-01'), CAST('1960-05-05' AS Date), toDate(-1), toDate(70000)", "1970-01-01\t2149-06-06\t1970-01-01\t1970-01-01\t1970-01-01\n"),
    ("SELECT toDateTime('1960-01-01 00:00:00'), toDateTime('2200-01-01 00:00:00'), toDateTime(-1), toDateTime(5000000000)", "1970-01-01 00:00:00\t2106-02-07 06:28:15\t1970-01-01 00:00:00\t2106-02-07 06:28:15\n"),
    ("SELECT toDateTime64('2021-09-12 11:22:33.5', 3), toTypeName(toDateTime64('2021-09-12 11:22:33', 3))", "2021-09-12 11:22:33.500\tDateTime64(3)\n"),
    ("SELECT round(2.5), round(-2.5), round(3.5), round(2.675, 2), round(toFloat32(2.5)), toTypeName(round(toFloat32(2.5))), round(1234.5678, -2), round(nan)", "2\t-2\t4\t2.68\t2\tFloat32\t1200\tnan\n"),
    ("SELECT round(toUInt16(1250), -2), round(toInt32(-1250), -2), toTypeName(round(toUInt16(1250), -2)), round(toDecimal32(2.5, 1)), round(toDecimal32(-2.55, 2), 1)", "1300\t-1300\tUInt16\t3\t-2.5\n"),
    ("SELECT log(100), ln(100), log(0), log(-1), exp2(3), exp10(2), erf(0.5), erfc(0.5), lgamma(4.5)", "4.605170185988092\t4.605170185988092\t-inf\tnan\t8\t100\t0.5204998778130465\t0.4795001221869535\t2.4537365708424423\n"),
    ("SELECT sign(-2), sign(0), sign(3.5), toTypeName(sign(3.5))", "-1\t0\t1\tInt8\n"),
    ("SELECT min(x), max(x) FROM (SELECT arrayJoin([nan, 1, 3]) AS x)", "1\t3\n"),
    ("SELECT min(x), max(x) FROM (SELECT arrayJoin([nan, nan]) AS x)", "nan\tnan\n"),
    ("SELECT min(x), max(x) FROM (SELECT arrayJoin([toFloat64(0.0), -nan, toFloat64(1.0), toFloat64(-1.0)]) AS x)", "-1\t1\n"),
    ("SELECT number % 2 AS k, max(if(number < 4, nan, toFloat64(number))) AS m, min(if(number < 4, nan, toFloat64(number))) AS n FROM numbers(6) GROUP BY k ORDER BY k", "0\t4\t4\n1\t5\t5\n"),
    ("SELECT coalesce(), coalesce(NULL), coalesce(NULL, 1)", "\\N\t\\N\t1\n"),
    // Tuples IN a set of tuples: elements converted to the left side's types or skipped,
    // elements with a NULL skipped, a left side with a NULL in no set; never NULL.
    ("SELECT (number, toString(number)) IN ((1, '1'), (-1, '-1')), (number - 1, number % 2) NOT IN ((0, 1), (2, 1)), (toUInt8(number), 1) IN ((1.5, 1), (2, 1.0)) FROM numbers(4)",
     "0\t1\t0\n1\t0\t0\n0\t1\t1\n0\t0\t0\n"),
    ("SELECT (nullIf(number, 2), number) IN (SELECT nullIf(number, 1), number FROM numbers(4)) AS a, (nullIf(number, 2), number) NOT IN (SELECT number, number FROM numbers(4)) AS b FROM numbers(4)",
     "1\t0\n0\t0\n0\t1\n1\t0\n"),
    ("SELECT count() FROM numbers(10) WHERE (number % 3, toString(number % 2)) IN (SELECT 1, '1' UNION ALL SELECT 2, '0')", "4\n"),
    ("SELECT (number, (number, 'a')) IN ((1, (1, 'a')), (2, (2, 'b'))) FROM numbers(3)", "0\n1\n0\n"),
    ("SELECT (toDate('2020-01-02'), 1) IN (('2020-01-02', 1)), (toDateTime('2020-01-02 00:00:00'), 1) IN ((toDate('2020-01-02'), 1)), tuple(1, 'a')", "1\t1\t(1,'a')\n"),
    // toTypeName says Nullable where ClickHouse's rules make a value Nullable.
    ("SELECT toTypeName(number), toTypeName(toNullable('a')), toTypeName(NULL), toTypeName(isNull(number)), toTypeName(number % 2 = 0 ? number : NULL), toTypeName(max(toNullable(number))) FROM numbers(2) GROUP BY number ORDER BY number LIMIT 1",
     "UInt64\tNullable(String)\tNullable(Nothing)\tUInt8\tNullable(UInt64)\tNullable(UInt64)\n"),
    ("SELECT toTypeName(x), toTypeName(y) FROM (SELECT nullIf('a', 'b') AS x, 'c' AS y)", "Nullable(String)\tString\n"),
    // Integer literals beside integer columns in coalesce / nullIf / if take the least supertype.
    ("SELECT coalesce(number % 2 = 0 ? number : NULL, 100) AS r, toTypeName(r), toTypeName(nullIf(number, 1)), toTypeName(if(number > 0, number, 0)) FROM numbers(2)",
     "0\tUInt64\tNullable(UInt64)\tUInt64\n100\tUInt64\tNullable(UInt64)\tUInt64\n"),
    ("SELECT toDate(toInt64(1665519765), 'Europe/Amsterdam'), toDate(100, 'Asia/Tokyo'), toDate('2022-10-11', 'Asia/Tokyo'), toYYYYMMDD(toDate(toUInt32(1665519765), 'Europe/Amsterdam'))", "2022-10-11\t1970-04-11\t2022-10-11\t20221011\n"),
    // Tuple and Map columns: stored, merged, indexed; a missing key is the value type's default.
    ("CREATE TABLE tm1 (k UInt8, t Tuple(a String, b Nullable(Int32)), m Map(String, UInt64), at Array(Tuple(String, UInt8))) ENGINE = MergeTree ORDER BY k; INSERT INTO tm1 VALUES (1, ('x', NULL), {'a': 1, 'b': 2}, [('k', 1), ('l', 2)]), (2, ('y', 5), map('c', 3), []); OPTIMIZE TABLE tm1 FINAL; SELECT k, t.a, t.b, tupleElement(t, 2), m['a'], m['zz'], mapKeys(m), mapValues(m), mapContains(m, 'c'), length(m), at[2].1, at[1].2, toTypeName(m) FROM tm1 ORDER BY k",
     "1\tx\t\\N\t\\N\t1\t0\t['a','b']\t[1,2]\t0\t2\tl\t1\tMap(String, UInt64)\n2\ty\t5\t5\t0\t0\t['c']\t[3]\t1\t1\t\t0\tMap(String, UInt64)\n"),
    ("SELECT map('a', 1, 'b', 2)['b'], map(1, 'x')[2], (1, 'a').2, tupleElement((3, 'b'), 1), length(map('a', 1))", "2\t\ta\t3\t1\n"),
    // Columns added later read as empty maps and tuples of defaults in old parts.
    ("CREATE TABLE tm2 (k UInt8) ENGINE = MergeTree ORDER BY k; INSERT INTO tm2 VALUES (1); ALTER TABLE tm2 ADD COLUMN m Map(String, String); ALTER TABLE tm2 ADD COLUMN t Tuple(Int8, Nullable(String)); SELECT k, m, t, m['q'] FROM tm2",
     "1\t{}\t(0,NULL)\t\n"),
    // MODIFY COLUMN: old parts read as CAST to the new type (wrapping), merged ones too.
    ("CREATE TABLE mc1 (a UInt32, b Int64, c String, f Float64) ENGINE = MergeTree ORDER BY a; INSERT INTO mc1 VALUES (1, 300, '12', 1.5), (2, -1, '7', -2.7); ALTER TABLE mc1 MODIFY COLUMN b UInt8; ALTER TABLE mc1 MODIFY COLUMN c UInt16, MODIFY COLUMN f Int32; INSERT INTO mc1 VALUES (3, 5, 6, 7); SELECT a, b, c, f, toTypeName(b) FROM mc1 ORDER BY a; OPTIMIZE TABLE mc1 FINAL; SELECT sum(b), sum(c), sum(f) FROM mc1",
     "1\t44\t12\t1\tUInt8\n2\t255\t7\t-2\tUInt8\n3\t5\t6\t7\tUInt8\n304\t25\t6\n"),
    // Through every type in between: Int64 300 -> Int8 44 -> String '44'.
    ("CREATE TABLE mc2 (a UInt8, b Int64) ENGINE = MergeTree ORDER BY a; INSERT INTO mc2 VALUES (1, 300); ALTER TABLE mc2 MODIFY COLUMN b Int8; INSERT INTO mc2 VALUES (2, -3); ALTER TABLE mc2 MODIFY COLUMN b String; SELECT a, b FROM mc2 ORDER BY a",
     "1\t44\n2\t-3\n"),
    // The type alone keeps the DEFAULT; a new kind and position.
    ("CREATE TABLE mc3 (a UInt32, b UInt32 DEFAULT a + 1, c String) ENGINE = MergeTree ORDER BY a; ALTER TABLE mc3 MODIFY COLUMN b UInt64; INSERT INTO mc3 (a) VALUES (1); ALTER TABLE mc3 MODIFY COLUMN b MATERIALIZED a * 10 AFTER c; INSERT INTO mc3 (a) VALUES (2); SELECT *, b FROM mc3 ORDER BY a; DESCRIBE mc3",
     "1\t\t2\n2\t\t20\na\tUInt32\t\t\t\t\t\nc\tString\t\t\t\t\t\nb\tUInt64\tMATERIALIZED\ta * 10\t\t\t\n"),
    // A column dropped, its parts rewritten, added again: the old values are gone.
    ("CREATE TABLE mc4 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; INSERT INTO mc4 VALUES (1,'x'); ALTER TABLE mc4 DROP COLUMN c; OPTIMIZE TABLE mc4 FINAL; ALTER TABLE mc4 ADD COLUMN c Float32; SELECT * FROM mc4",
     "1\t0\n"),
    // SELECT * over a USING join lists the keys first, an unaliased subquery's side too.
    ("CREATE TABLE p (id String, name String) ENGINE = Memory; CREATE TABLE c (id String, child String) ENGINE = Memory; INSERT INTO p VALUES ('1', 'John'); INSERT INTO c VALUES ('1', 'Robert'); SELECT * FROM p JOIN (SELECT * FROM c) USING id; SELECT * FROM (SELECT * FROM p) JOIN c USING id",
     "1\tJohn\tRobert\n1\tJohn\tRobert\n"),
    // IN takes an array as its list, and has the function forms in / notIn;
    // an empty list holds nothing (NULL stays NULL).
    ("SELECT 1 IN [1, 2], in(1, [1, 2]), in(3, tuple(1, 2)), notIn(3, (1, 2)), in(2, 2), 1 IN [], NULL IN [], 1 NOT IN [], count(in(NULL, [])) FROM numbers(1); SELECT number FROM numbers(4) WHERE number IN [1, 3]",
     "1\t1\t0\t1\t1\t0\t\\N\t1\t0\n1\n3\n"),
    // least / greatest of a signed integer and a UInt64 answer in Int64 / UInt64
    // (DataFusion's Decimal(20, 0) was then divided as a Decimal: 1 for 1.5).
    ("SELECT greatest(toInt64(3), toUInt64(1)) / 2, toTypeName(greatest(toInt64(3), toUInt64(1))), toTypeName(least(toInt64(3), toUInt64(1))), least(-9223372036854775808, 18446744073709551615), greatest(-9223372036854775808, 18446744073709551615), least(toUInt64(1), toInt8(-1), NULL)",
     "1.5\tUInt64\tInt64\t-9223372036854775808\t18446744073709551615\t-1\n"),
    // toWeek / toYearWeek in ClickHouse's week modes (all ten matched chDB for
    // 65,000 consecutive days from 1970 when written).
    ("SELECT toWeek(toDate('2000-12-31'), 0), toWeek(toDate('2000-12-31'), 6), toWeek(toDate('2021-01-03'), 3), toYearWeek(toDate('2021-01-03'), 1), toYearWeek(toDate('2016-12-31'), 9), toWeek('2020-01-05'), toWeek(toDateTime('2021-01-03 23:00:00'), 1, 'Asia/Tokyo'), toWeek(NULL)",
     "53\t1\t53\t202053\t201701\t1\t1\t\\N\n"),
    // roundDown: the greatest boundary not above x, the smallest below them all.
    ("SELECT roundDown(number, [6, 5, 4]) FROM numbers(8) FORMAT CSV; SELECT roundDown(2.5, [1, 2, 3]) r, toTypeName(r), roundDown(toNullable(2), [1, 3]), roundDown(toUInt64(7), [1, 2]) u, toTypeName(u), roundDown(toUInt8(3), [-1.5, e(), pi()])",
     "4\n4\n4\n4\n4\n5\n6\n6\n2\tFloat64\t1\t2\tUInt64\t2.718281828459045\n"),
    // ANY LEFT JOIN takes one right row per left row (was read as `t1 AS ANY LEFT
    // JOIN`, every match); SEMI LEFT JOIN keeps the matched left rows, with that row.
    ("CREATE TABLE l (x UInt32, a String) ENGINE = Memory; CREATE TABLE r (x UInt32, b String) ENGINE = Memory; INSERT INTO l VALUES (0, 'a1'), (2, 'a3'), (2, 'a6'), (4, 'a5'); INSERT INTO r VALUES (2, 'b1'), (2, 'b2'), (4, 'b3'), (4, 'b4'); SELECT * FROM l ANY LEFT JOIN r USING (x) ORDER BY x, a; SELECT a, b FROM l LEFT ANY JOIN (SELECT x, b FROM r) s ON l.x = s.x ORDER BY a; SELECT l.*, r.* FROM l SEMI LEFT JOIN r USING x ORDER BY l.a",
     "0\ta1\t\n2\ta3\tb1\n2\ta6\tb1\n4\ta5\tb3\na1\t\na3\tb1\na5\tb3\na6\tb1\n2\ta3\t2\tb1\n4\ta5\t4\tb3\n2\ta6\t2\tb1\n"),
    // ANY INNER keeps one row per key of each side; ANY RIGHT and SEMI RIGHT one
    // left row per right row.
    ("CREATE TABLE l2 (x UInt32, a String) ENGINE = Memory; CREATE TABLE r2 (x UInt32, b String) ENGINE = Memory; INSERT INTO l2 VALUES (0, 'a1'), (2, 'a3'), (2, 'a6'), (4, 'a5'); INSERT INTO r2 VALUES (2, 'b1'), (2, 'b2'), (4, 'b3'), (5, 'b6'); SELECT * FROM l2 ANY INNER JOIN r2 USING (x) ORDER BY x; SELECT * FROM l2 AS p ANY RIGHT JOIN r2 AS q ON q.x = p.x ORDER BY q.x, b; SELECT a, b FROM l2 SEMI RIGHT JOIN r2 USING (x) ORDER BY b",
     "2\ta3\tb1\n4\ta5\tb3\n2\ta3\t2\tb1\n2\ta3\t2\tb2\n4\ta5\t4\tb3\n0\t\t5\tb6\na3\tb1\na3\tb2\na5\tb3\n"),
    // ANTI joins keep the rows whose key the other side lacks, with its defaults.
    ("CREATE TABLE l3 (x UInt32, a String) ENGINE = Memory; CREATE TABLE r3 (x UInt32, b String) ENGINE = Memory; INSERT INTO l3 VALUES (0, 'a1'), (2, 'a3'), (3, 'a4'); INSERT INTO r3 VALUES (2, 'b1'), (5, 'b6'), (5, 'b7'); SELECT * FROM l3 AS p ANTI LEFT JOIN r3 AS q ON p.x = q.x ORDER BY a; SELECT a, b FROM l3 ANTI RIGHT JOIN r3 USING (x) ORDER BY b; SELECT * FROM l3 LEFT ANTI JOIN r3 USING (x) ORDER BY a SETTINGS join_use_nulls = 1",
     "0\ta1\t0\t\n3\ta4\t0\t\n\tb6\n\tb7\n0\ta1\t\\N\n3\ta4\t\\N\n"),
    // ARRAY JOIN (was read as a join with a table named after the array).
    ("SELECT * FROM (SELECT 1 AS n, [1, 2] AS a) ARRAY JOIN a AS x; SELECT * FROM (SELECT 1 AS n, [1, 2] AS a) ARRAY JOIN a; SELECT n, x FROM (SELECT 1 AS n, ['p', 'q'] AS a UNION ALL SELECT 2, []) LEFT ARRAY JOIN a AS x ORDER BY n, x; SELECT number, r FROM numbers(3) ARRAY JOIN range(number) AS r; SELECT s.* FROM (SELECT 1 AS n, [1, 2] AS a) AS s ARRAY JOIN a AS x",
     "1\t[1,2]\n1\t[1,2]\n1\t1\n1\t2\n1\tp\n1\tq\n2\t\n1\t0\n2\t0\n2\t1\n1\t[1,2]\n1\t[1,2]\n"),
    // toTypeName under join_use_nulls = 1: the padded side's columns are Nullable.
    ("SELECT toTypeName(b), toTypeName(a) FROM (SELECT 1 k, toInt8(1) a) AS x LEFT JOIN (SELECT 2 k, toInt8(1) b) AS y USING (k) SETTINGS join_use_nulls = 1; SELECT toTypeName(b) FROM (SELECT 1 k, toInt8(1) a) AS x LEFT JOIN (SELECT 2 k, toInt8(1) b) AS y USING (k)",
     "Nullable(Int8)\tInt8\nInt8\n"),
    // toFixedString pads with zero bytes (FixedString is carried as a String).
    ("SELECT toFixedString('ab', 3) x, length(x), hex(x), toFixedString(toNullable('a'), 2), substring(toFixedString('abc', 3), -2)",
     "ab\\0\t3\t616200\ta\\0\tbc\n"),
    // sumWithOverflow stays in its argument's type and wraps.
    ("SELECT sumWithOverflow(toUInt16(number * 1000)), toTypeName(sumWithOverflow(toUInt16(number * 1000))), sumWithOverflow(toInt8(number)), sumWithOverflow(toFloat32(0.5)), toTypeName(sumWithOverflow(toFloat32(0.5))), sumWithOverflow(toInt64(number) - 50) FROM numbers(100); SELECT sumWithOverflow(toInt8(number)) FROM numbers(0); SELECT sumWithOverflow(if(number > 5, NULL, toNullable(toInt8(number)))), sumWithOverflow(CAST(NULL AS Nullable(Int8))) FROM numbers(3)",
     "34800\tUInt16\t86\t50\tFloat32\t-50\n0\n3\t\\N\n"),
    // ORDER BY the sorting key LIMIT n reads the parts in order: equal keys come
    // as ClickHouse returns them (insertion order in a part, the newest part first).
    ("CREATE TABLE ro (x UInt32, y UInt32) ENGINE = MergeTree() ORDER BY x; SYSTEM STOP MERGES ro; INSERT INTO ro VALUES (1,1),(1,2),(1,3),(1,4),(1,5); INSERT INTO ro VALUES (2,6),(2,7),(2,8),(2,9),(2,0); INSERT INTO ro VALUES (1, 10), (0, 11); SELECT * FROM ro ORDER BY x LIMIT 3; SELECT * FROM ro ORDER BY x LIMIT 8; SELECT y FROM ro WHERE y > 1 ORDER BY x LIMIT 2; SELECT x + 1, y FROM ro ORDER BY x LIMIT 3",
     "0\t11\n1\t10\n1\t1\n0\t11\n1\t10\n1\t1\n1\t2\n1\t3\n1\t4\n1\t5\n2\t6\n11\n10\n1\t11\n2\t10\n2\t1\n"),
    ("CREATE TABLE ro2 (x UInt32, y UInt32) ENGINE = MergeTree() ORDER BY x; INSERT INTO ro2 VALUES (1,1),(1,2),(1,3),(1,4),(1,5),(2,6),(2,7); SELECT * FROM ro2 ORDER BY x LIMIT 3",
     "1\t1\n1\t2\n1\t3\n"),
    // ...and without the OPTIMIZE: ADD COLUMN rewrites the parts that hold them first.
    ("CREATE TABLE mc5 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; INSERT INTO mc5 VALUES (1,'x'); ALTER TABLE mc5 DROP COLUMN c; INSERT INTO mc5 VALUES (2); ALTER TABLE mc5 ADD COLUMN c Float32; INSERT INTO mc5 VALUES (3, 1.5); SELECT * FROM mc5 ORDER BY a",
     "1\t0\n2\t0\n3\t1.5\n"),
];

const ERRORS: &[(&str, i32)] = &[
    ("SELECT toFixedString('abcd', 3)", 131),
    ("SELECT toWeek(toDate('2020-01-05'), number) FROM numbers(2)", 44),
    ("SELECT toWeek(1)", 43),
    ("SELECT toYearWeek()", 42),
    // ARRAY JOIN of two arrays zips them in ClickHouse: refused, not a cross join.
    ("SELECT * FROM (SELECT [1, 2] AS a, [3, 4] AS b) ARRAY JOIN a AS x, b AS y", 48),
    // Join strictnesses not implemented are refused, never answered as ALL.
    ("SELECT * FROM numbers(3) AS a ANY FULL JOIN numbers(2) AS b ON a.number = b.number", 48),
    ("SELECT 1 FROM numbers(1) a JOIN numbers(1) b USING number ANY RIGHT JOIN numbers(2) c ON b.number = c.number", 48),
    ("SELECT * FROM numbers(3) AS a ASOF LEFT JOIN numbers(2) AS b ON a.number = b.number", 48),
    ("SELECT * FROM numbers(3) AS a ANY LEFT JOIN numbers(2) AS b ON a.number + 1 = b.number", 48),
    ("SELECT roundDown(number, [number]) FROM numbers(3)", 44),
    ("SELECT roundDown(1, [])", 43),
    ("SELECT roundDown('a', [1])", 43),
    ("SELECT toFixedString(materialize('ab'), number) FROM numbers(3)", 44),
    // A DateTime64 past 2262 does not fit in nanoseconds: an overflow, not NULL.
    ("SELECT toDateTime64('3000-01-01 12:00:00', 0) + INTERVAL 0 NANOSECOND", 407),
    ("SELECT tupleElement((1, 'a'), 3)", 69),
    ("SELECT tupleElement(CAST((1, 'y'), 'Tuple(a UInt8, b String)'), 'c')", 36),
    ("SELECT tupleElement(1, 1)", 43),
    // A byte slice through a character cannot be held in a UTF-8 string.
    ("SELECT substring('héllo', 1, 2)", 48),
    ("CREATE TABLE m2 (t DateTime, d Date MATERIALIZED toDate(t)) ENGINE = MergeTree ORDER BY t; INSERT INTO m2 (t, d) VALUES ('2010-01-01 00:00:00', '2010-01-01')", 44),
    ("SELECT leftPad('abc', -1)", 353),
    ("SELECT reverse('héllo')", 48),
    ("SELECT leftPad('a', 2, 'é')", 48),
    ("SELECT quantile(1.5)(number) FROM numbers(3)", 12),
    ("SELECT quantile(-0.1)(number) FROM numbers(3)", 12),
    ("SELECT quantile(0.5)('a')", 43),
    ("SELECT toUInt32OrZero(5)", 43),
    ("SELECT CAST('12a' AS UInt8)", 6),
    ("SELECT toDecimal32(10000000000, 0)", 407),
    ("SELECT toDecimal32(2147483647, 0) + 1", 407),
    ("SELECT arrayZip('a', 'b')", 43),
    ("SELECT arrayZip([1, 2], [1])", 190),
    ("SELECT toDecimal32(1, 0) / 0", 153),
    ("SELECT toDecimal32(1, 1) / toDecimal32(3, 2)", 69),
    ("SELECT CAST(1 AS Foo)", 50),
    ("SELECT 5 % 0", 153),
    ("SELECT toDate(now(), 'Mars/Base')", 36),
    ("SELECT round(toUInt8(255), -1)", 69),
    ("SELECT round(1.5, number) FROM numbers(2)", 44),
    ("SELECT number % 0 FROM numbers(2)", 153),
    ("SELECT splitByChar('ab', 'xabx')", 36),
    ("SELECT isZeroOrNull('')", 36),
    (
        "CREATE TABLE codec_e1 (a String CODEC(Delta, LZ4)) ENGINE = MergeTree ORDER BY tuple()",
        36,
    ),
    (
        "CREATE TABLE codec_e2 (a UInt64 CODEC(Foo)) ENGINE = MergeTree ORDER BY tuple()",
        432,
    ),
    (
        "CREATE TABLE codec_e3 (a UInt64 CODEC(ZSTD(23))) ENGINE = MergeTree ORDER BY tuple()",
        433,
    ),
    (
        "CREATE TABLE codec_e4 (a Float64 CODEC(T64, LZ4)) ENGINE = MergeTree ORDER BY tuple()",
        431,
    ),
    (
        "CREATE TABLE codec_e5 (a UInt64 CODEC(Delta)) ENGINE = MergeTree ORDER BY tuple()",
        36,
    ),
    ("SELECT formatDateTime(toDateTime('2018-01-02 22:33:44'))", 42),
    ("CREATE TEMPORARY TABLE t (a UInt8); ALTER TABLE t ADD COLUMN b DEFAULT a + 1", 36),
    // MODIFY COLUMN: a value that does not convert fails the ALTER itself.
    ("CREATE TABLE me1 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; INSERT INTO me1 VALUES (1, 'x'); ALTER TABLE me1 MODIFY COLUMN c UInt8", 6),
    ("CREATE TABLE me2 (a UInt32) ENGINE = MergeTree ORDER BY a; ALTER TABLE me2 MODIFY COLUMN a UInt64", 524),
    ("CREATE TABLE me3 (a UInt32) ENGINE = MergeTree ORDER BY a; ALTER TABLE me3 MODIFY COLUMN zz DEFAULT 1", 10),
    ("CREATE TABLE me4 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; ALTER TABLE me4 MODIFY COLUMN c TYPE Float32", 62),
    ("CREATE TABLE me5 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; ALTER TABLE me5 ALTER COLUMN c Float32", 62),
    ("CREATE TABLE me6 (a UInt32, c String) ENGINE = MergeTree ORDER BY a; ALTER TABLE me6 MODIFY COLUMN c REMOVE DEFAULT", 36),
    // Back to a former type while a part holds values the type between changed.
    ("CREATE TABLE me7 (a UInt32, b Int64) ENGINE = MergeTree ORDER BY a; INSERT INTO me7 VALUES (1, 300); ALTER TABLE me7 MODIFY COLUMN b Int8; ALTER TABLE me7 MODIFY COLUMN b Int64", 48),
    ("CREATE TEMPORARY TABLE me9 (a Int8, b UInt64 DEFAULT (SELECT 1))", 116),
    // ALIAS columns are stored here: a stored column cannot become one.
    ("CREATE TABLE me10 (a UInt32, b UInt32 DEFAULT a) ENGINE = MergeTree ORDER BY a; ALTER TABLE me10 MODIFY COLUMN b ALIAS a + 1", 48),
    ("CREATE TEMPORARY TABLE t (a DEFAULT [1, 2])", 48),
    ("CREATE TEMPORARY TABLE t (a Nullable(UInt8), b DEFAULT a + 1)", 48),
    ("SELECT formatDateTime()", 42),
    ("SELECT formatDateTime(1, '%F')", 43),
    ("SELECT formatDateTime('2020-01-01', '%F')", 43),
    ("SELECT formatDateTime(toDate('2010-01-03'), '%z')", 43),
    ("SELECT formatDateTime(now(), concat('%', toString(number))) FROM numbers(2)", 44),
    ("SELECT formatDateTime(now(), '%E')", 36),
    ("SELECT formatDateTime(now(), 'abc%')", 36),
    ("SELECT formatDateTime(now(), '%U')", 48),
    ("SELECT formatDateTime(now(), '%F', 'Nowhere/X')", 36),
    ("SELECT toStartOfSecond()", 42),
    ("SELECT toStartOfSecond('123')", 43),
    ("SELECT toUnixTimestamp64Milli('abc', 123)", 42),
    ("SELECT toUnixTimestamp64Nano('abc')", 43),
    ("SELECT (1, 2) IN ((1, 2), 5, 6)", 124),
    ("SELECT (1, 2) IN ((1, 2), (1, 2, 3))", 124),
    ("SELECT (1, 2) IN (SELECT 1)", 20),
    ("CREATE TABLE e_v (a UInt8, b UInt8) ENGINE = MergeTree ORDER BY a; INSERT INTO e_v VALUES (1, 2, 3)", 62),
    (
        "CREATE TABLE codec_e6 (a UInt64 CODEC(ZSTD, Delta)) ENGINE = MergeTree ORDER BY tuple()",
        36,
    ),
];

/// Conversions (CAST in every spelling, toT, toDecimalN, -OrZero/-OrNull),
/// float literals, by-value float comparisons, integer result types and
/// wrap-around, string splitting: every answer ClickHouse's (from chDB).
#[test]
fn answers_as_clickhouse() {
    let d = tempfile::tempdir().unwrap();
    let wrong: Vec<String> = ANSWERS
        .iter()
        .filter_map(|(sql, want)| {
            let o = local(d.path(), sql);
            let got = if o.status.success() {
                String::from_utf8_lossy(&o.stdout).to_string()
            } else {
                String::from_utf8_lossy(&o.stderr).to_string()
            };
            (got != *want).then(|| format!("{sql}\n  want {want:?}\n  got  {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn errors_carry_clickhouses_codes() {
    let d = tempfile::tempdir().unwrap();
    for (sql, code) in ERRORS {
        let e = err(d.path(), sql);
        assert!(e.starts_with(&format!("Code: {code}.")), "{sql}: {e}");
    }
}

/// Values are UTC instants shown in UTC. ClickHouse parses and prints a
/// value of another zone in that zone, so a zone other than UTC is refused
/// (rather than answered in UTC); UTC itself is accepted.
#[test]
fn time_zones_other_than_utc_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    for (sql, code) in [
        (
            "SELECT toDateTime('2020-12-20 01:59:52', 'Asia/Istanbul')",
            48,
        ),
        (
            "CREATE TABLE tz (t DateTime('Europe/Berlin')) ENGINE = MergeTree ORDER BY t",
            50,
        ),
        (
            "SELECT toDateTime64('2020-12-20 01:59:52', 3, 'America/Los_Angeles')",
            50,
        ),
    ] {
        let e = err(d.path(), sql);
        assert!(e.starts_with(&format!("Code: {code}.")), "{sql}: {e}");
        assert!(e.contains("only the UTC time zone"), "{sql}: {e}");
    }
    assert_eq!(
        ok(
            d.path(),
            "CREATE TABLE tu (t DateTime('UTC'), u DateTime64(3, 'Etc/UTC')) ENGINE = MergeTree ORDER BY t; \
             INSERT INTO tu VALUES ('2020-12-20 01:59:52', '2020-12-20 01:59:52.5'); \
             SELECT t, u, toDateTime('2020-12-20 01:59:52', 'UTC') FROM tu"
        ),
        "2020-12-20 01:59:52\t2020-12-20 01:59:52.500\t2020-12-20 01:59:52\n"
    );
}

/// A NULL inserted into a non-Nullable column is stored as the column's
/// default (input_format_null_as_default = 1), in VALUES and INSERT SELECT.
#[test]
fn null_into_a_non_nullable_column_is_its_default() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (x UInt32, y UInt32, s String) ENGINE = MergeTree ORDER BY x",
    );
    ok(
        d.path(),
        "INSERT INTO t VALUES (1, NULL, NULL), (2, 5, 'a')",
    );
    ok(d.path(), "INSERT INTO t SELECT 3, NULL, NULL");
    assert_eq!(
        ok(d.path(), "SELECT x, y, s FROM t ORDER BY x"),
        "1\t0\t\n2\t5\ta\n3\t0\t\n"
    );
}

/// String literals read as ClickHouse reads them: a backslash before a
/// character without an escape meaning stays (regexes, LIKE patterns,
/// back-references), `\xHH` is a byte; REGEXP_REPLACE replaces every match.
/// Expected values from ClickHouse (chDB 4.4).
#[test]
fn string_literals_keep_clickhouses_backslashes() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(
        d.path(),
        r"SELECT '\1', length('\1'), match('a1', '\d'), 'a_b' LIKE 'a\_b', 'axb' LIKE 'a\_b', REGEXP_REPLACE('aaa', 'a', 'b'), replaceRegexpOne('aaa', 'a', 'b'), replaceRegexpAll('abc', '(b)', '[\1]'), '\x41' FORMAT TSV",
    );
    assert_eq!(out, "\\\\1\t2\t1\t1\t0\tbbb\tbaa\ta[b]c\tA\n");
    // A default holding backslashes is stored and read back unchanged.
    ok(
        d.path(),
        r"CREATE TABLE t (id UInt8, re String DEFAULT 'x\d+\\n') ENGINE = MergeTree ORDER BY id",
    );
    ok(d.path(), "INSERT INTO t (id) VALUES (1)");
    assert_eq!(
        ok(d.path(), "SELECT re, length(re) FROM t FORMAT TSV"),
        "x\\\\d+\\\\n\t6\n"
    );
}

/// intDiv rounding toward zero, NULLs in IN lists skipped
/// (`transform_null_in = 0`). Expected values from ClickHouse (chDB 4.4).
#[test]
fn int_div_and_in_lists_answer_as_clickhouse() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(d.path(), "SELECT intDiv(-7, 2), intDiv(7, -2)"),
        "-3\t-3\n"
    );
    let e = err(d.path(), "SELECT intDiv(7, 0)");
    assert!(e.contains("Code: 153."), "{e}");
    assert_eq!(
        ok(
            d.path(),
            "SELECT 2 IN (NULL), NULL IN (1, NULL), 2 NOT IN (1, NULL), 1 NOT IN (1, NULL), 2 IN (1, NULL)"
        ),
        "0\t\\N\t1\t0\t0\n"
    );
}

/// An ordered subquery feeds the aggregates above it in its order, rows of
/// several parts included (DataFusion dropped a subquery's ORDER BY that no
/// operator above asked for, so `groupArray` saw the parts' order).
#[test]
fn aggregates_over_an_ordered_subquery_see_its_order() {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        "CREATE TABLE t (k UInt64) ENGINE = MergeTree ORDER BY tuple(); \
         INSERT INTO t VALUES (5), (1), (9); INSERT INTO t VALUES (3), (7); \
         INSERT INTO t VALUES (2), (8), (0), (4), (6)",
    );
    for (sql, want) in [
        (
            "SELECT groupArray(k) FROM (SELECT k FROM t ORDER BY k)",
            "[0,1,2,3,4,5,6,7,8,9]\n",
        ),
        (
            "SELECT groupArray(k) FROM (SELECT k FROM t ORDER BY k DESC)",
            "[9,8,7,6,5,4,3,2,1,0]\n",
        ),
        (
            "SELECT any(k), anyLast(k) FROM (SELECT k FROM t ORDER BY k)",
            "0\t9\n",
        ),
        (
            "SELECT g, groupArray(k) FROM (SELECT k % 2 AS g, k FROM t ORDER BY k) GROUP BY g ORDER BY g",
            "0\t[0,2,4,6,8]\n1\t[1,3,5,7,9]\n",
        ),
        (
            "SELECT groupArray(k) FROM (SELECT k FROM t WHERE k > 2 ORDER BY k DESC)",
            "[9,8,7,6,5,4,3]\n",
        ),
        (
            "SELECT arrayStringConcat(groupArray(toString(k)), ',') FROM (SELECT k FROM t ORDER BY k)",
            "0,1,2,3,4,5,6,7,8,9\n",
        ),
    ] {
        assert_eq!(ok(d.path(), sql), want, "{sql}");
    }
}
