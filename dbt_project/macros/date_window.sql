{#- The chart_date window an incremental run rebuilds: half-open [min_date, max_date). The vars `min_date` /
    `max_date` win (`dbt build --vars '{min_date: ..., max_date: ...}'`); else the environment variables
    CHARTLAKE_DBT_MIN_DATE / CHARTLAKE_DBT_MAX_DATE, which is how Dagster hands dbt its partition window; else
    every date. Dagster does not pass vars: dbt hashes command-line vars into its partial-parse state and re-parses
    the whole project when they change, and it re-parses every file whose env_var() values changed. So the
    variables are read only at execution: parsing renders a model's SQL only for its refs and configs, and sees
    the all-dates default. -#}
{% macro window_bound(name, default) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('CHARTLAKE_DBT_' ~ (name | upper), '') | trim -%}
    {%- endif -%}
    {{- return(value or default) -}}
{%- endmacro %}

{% macro min_date() -%}
    cast('{{ window_bound("min_date", "1900-01-01") }}' as date)
{%- endmacro %}

{% macro max_date() -%}
    cast('{{ window_bound("max_date", "9999-12-31") }}' as date)
{%- endmacro %}

{% macro in_date_window(column) -%}
    ({{ column }} >= {{ min_date() }} and {{ column }} < {{ max_date() }})
{%- endmacro %}

{#- The identifier of one chart series (everything in the chart key but the date). genre_id is null for
    the overall chart, so joins and window partitions use this string instead of the nullable column. -#}
{% macro chart_id(store, country, device, chart, genre_id) -%}
    ({{ store }} || '/' || {{ country }} || '/' || {{ device }} || '/' || {{ chart }} || '/'
        || coalesce(cast({{ genre_id }} as varchar), 'all'))
{%- endmacro %}
