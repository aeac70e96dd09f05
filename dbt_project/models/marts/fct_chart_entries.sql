-- The cleaned, typed fact: the current version of every chart position, with its lineage (payload hash,
-- source, run) so every published figure leads back to the raw payload it came from.
select
    chart_id,
    store,
    country,
    device,
    chart,
    genre_id,
    chart_date,
    rank,
    app_id,
    app_name,
    developer_name,
    developer_id,
    genre_name,
    release_date,
    price,
    currency,
    url,
    payload_sha256,
    source_url,
    source_format,
    fetched_at,
    run_id,
    ingested_at
from {{ ref('stg_apple__chart_entries') }}
where {{ in_date_window('chart_date') }}
