-- The payload register, typed and normalised like the chart rows.
with

source as (

    select * from {{ source('raw', 'payloads') }}

),

renamed as (

    select
        payload_sha256,
        lower(trim(store)) as store,
        lower(trim(country)) as country,
        lower(trim(device)) as device,
        lower(trim(chart)) as chart,
        cast(genre_id as integer) as genre_id,
        cast(chart_date as date) as chart_date,
        {{ chart_id('lower(trim(store))', 'lower(trim(country))', 'lower(trim(device))', 'lower(trim(chart))', 'genre_id') }} as chart_id,
        source_url,
        source_format,
        cast(http_status as integer) as http_status,
        cast(fetched_at as timestamp) as fetched_at,
        run_id,
        cast(registered_at as timestamp) as registered_at,
        lower(trim(status)) as status,
        error,
        cast(entry_count as integer) as entry_count

    from source

)

select * from renamed
