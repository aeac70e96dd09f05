{#- Staging's shared vocabulary: how raw columns are typed and normalised, and how rows are matched to their payload
    version. stg_apple__chart_entries and stg_apple__app_names both read raw rows by version; writing it once
    keeps the two from drifting apart (a country code lower-cased in one and not the other would silently drop
    names from dim_apps). -#}

{#- `expr as column` for each column named, in the order given. Names are not in here on purpose: the chart rows
    NFC-normalise and trim them, the name history keeps them verbatim. -#}
{% macro normalised_columns() -%}
    {%- set rules = {
        'store': 'lower(trim(store))',
        'country': 'lower(trim(country))',
        'device': 'lower(trim(device))',
        'chart': 'lower(trim(chart))',
        'genre_id': 'cast(genre_id as integer)',
        'chart_date': 'cast(chart_date as date)',
        'rank': 'cast(rank as integer)',
        'app_id': 'trim(cast(app_id as varchar))',
    } -%}
    {%- for column in varargs %}
        {{ rules[column] }} as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The raw chart rows (`columns` of raw.chart_entries `e`) of the payload versions that satisfy `version_filter`, a
    predicate on raw.payload_versions `v`. An inner join, one version row per chart key and payload: no row is
    duplicated, and DuckDB carries a chart_date filter to both sides (it does not for a semi join). -#}
{% macro raw_entries_of_versions(version_filter, columns='e.*') -%}
    select {{ columns }}
    from {{ source('raw', 'chart_entries') }} as e
    inner join {{ source('raw', 'payload_versions') }} as v
        on {{ version_filter }}
        and e.store = v.store
        and e.country = v.country
        and e.device = v.device
        and e.chart = v.chart
        and e.genre_id is not distinct from v.genre_id
        and e.chart_date = v.chart_date
        and e.payload_sha256 = v.payload_sha256
{%- endmacro %}
