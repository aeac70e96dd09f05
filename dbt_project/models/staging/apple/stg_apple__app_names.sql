-- Every name and developer each app was charted under, from every payload version of every chart that is not
-- quarantined (a superseded snapshot of the day still showed the app under its name), as the payload wrote them:
-- only ASCII spaces at the ends go. trim() would also strip ideographic spaces (U+3000) and NFC would recompose
-- characters, and dim_apps promises the names verbatim. Readers filter by chart_date, which reaches the raw scan.
-- payload_versions is a view over the quarantine: depending on the quarantine asset too makes every run that
-- materializes both (daily_job) judge the day before staging reads it.
-- depends_on: {{ source('raw', 'quarantined_payloads') }}
with

source as not materialized (

    select e.app_id, e.chart_date, e.country, e.app_name, e.developer_name
    from {{ source('raw', 'chart_entries') }} as e
    inner join {{ source('raw', 'payload_versions') }} as v
        on not v.is_quarantined
        and e.store = v.store
        and e.country = v.country
        and e.device = v.device
        and e.chart = v.chart
        and e.genre_id is not distinct from v.genre_id
        and e.chart_date = v.chart_date
        and e.payload_sha256 = v.payload_sha256

),

renamed as (

    select
        trim(cast(app_id as varchar)) as app_id,
        cast(chart_date as date) as chart_date,
        lower(trim(country)) as country,
        nullif(trim(app_name, ' '), '') as app_name,
        nullif(trim(developer_name, ' '), '') as developer_name
    from source

)

select distinct * from renamed
