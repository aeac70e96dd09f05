-- The ingest floor: one day's payload files -> canonical raw rows in a DuckLake, by DuckDB alone. What plain DuckDB
-- needs at least to do what `chartlake import` does on the benchmark's files: hash every file, read both Apple
-- formats with DuckDB's JSON reader and an explicit schema (no inference), unnest the entries into the canonical
-- columns in SQL, and insert the day in one DuckLake commit. No registry, no raw store, no validation, no
-- quarantine: those are ours, and the ratio to this floor says what they cost.
--
-- benchmarks/run.py fills $files (a DuckDB list of the day's file paths) and $day, and runs this inside
-- BEGIN ... COMMIT on a connection with the floor's DuckLake attached as `floorlake`. The chart key comes from the
-- file name (<country>-<device>-<chart>.json, as `chartlake import` reads it for these files); the day from $day.

create or replace temp table floor_files as
select filename, sha256(content) as payload_sha256
from read_blob($files);

insert into floorlake.raw.chart_entries
with docs as (
    select filename, feed
    from read_json($files, format = 'auto', records = true, filename = true, maximum_object_size = 67108864,
        columns = {'feed': 'STRUCT(
            updated JSON,
            results STRUCT(
                artistName VARCHAR, id VARCHAR, name VARCHAR, releaseDate VARCHAR, artistId VARCHAR,
                artistUrl VARCHAR, genres STRUCT(genreId VARCHAR, name VARCHAR)[], url VARCHAR)[],
            entry STRUCT(
                "im:name" STRUCT(label VARCHAR),
                "im:price" STRUCT(attributes STRUCT(amount VARCHAR, currency VARCHAR)),
                link STRUCT(attributes STRUCT(rel VARCHAR, href VARCHAR)),
                id STRUCT(label VARCHAR, attributes STRUCT("im:id" VARCHAR)),
                "im:artist" STRUCT(label VARCHAR, attributes STRUCT(href VARCHAR)),
                category STRUCT(attributes STRUCT(label VARCHAR)),
                "im:releaseDate" STRUCT(label VARCHAR))[])'})
),
keyed as (
    select
        filename,
        feed,
        regexp_extract(filename, '([a-z]{2})-(iphone|ipad)-(top-free|top-paid|top-grossing)\.json$',
                       ['country', 'device', 'chart']) as k,
        -- v2's updated is a string; legacy's an object with a label
        coalesce(feed.updated ->> 'label', feed.updated ->> '$') as updated
    from docs
),
v2 as (
    select
        filename, k, updated, 'apple-rss-v2' as source_format,
        cast(generate_subscripts(feed.results, 1) as integer) as rank,
        unnest(feed.results) as r
    from keyed
    where feed.results is not null
),
legacy as (
    select
        filename, k, updated, 'itunes-rss-legacy' as source_format,
        cast(generate_subscripts(feed.entry, 1) as integer) as rank,
        unnest(feed.entry) as e
    from keyed
    where feed.entry is not null
),
entries as (
    select
        filename, k, updated, source_format, rank,
        r.id as app_id, r.name as app_name, r.artistName as developer_name,
        coalesce(r.artistId, regexp_extract(r.artistUrl, '/id(\d+)', 1)) as developer_id,
        r.genres[1].name as genre_name, r.releaseDate as release_date,
        null::decimal(10, 2) as price, null::varchar as currency, r.url as url
    from v2
    union all by name
    select
        filename, k, updated, source_format, rank,
        e.id.attributes."im:id" as app_id, e."im:name".label as app_name, e."im:artist".label as developer_name,
        nullif(regexp_extract(e."im:artist".attributes.href, '/id(\d+)', 1), '') as developer_id,
        e.category.attributes.label as genre_name, e."im:releaseDate".label as release_date,
        cast(e."im:price".attributes.amount as decimal(10, 2)) as price,
        nullif(e."im:price".attributes.currency, '') as currency,
        coalesce(e.link.attributes.href, e.id.label) as url
    from legacy
)
select
    'apple' as store,
    e.k.country as country,
    e.k.device as device,
    e.k.chart as chart,
    null::integer as genre_id,
    $day::date as chart_date,
    e.rank,
    e.app_id,
    e.app_name,
    e.developer_name,
    nullif(e.developer_id, '') as developer_id,
    e.genre_name,
    try_cast(left(e.release_date, 10) as date) as release_date,
    e.price,
    e.currency,
    nullif(e.url, '') as url,
    f.payload_sha256,
    e.filename as source_url,
    e.source_format,
    null::timestamp as fetched_at,
    'ingest-floor' as run_id,
    now()::timestamp as ingested_at,
    null::timestamp as captured_at
from entries as e
join floor_files as f using (filename);
