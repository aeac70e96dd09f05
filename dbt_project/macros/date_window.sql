{#- The chart_date window an incremental run rebuilds: half-open [min_date, max_date), from the vars that
    Dagster's daily partitions set (defaults in dbt_project.yml mean "every date"). -#}
{% macro min_date() -%}
    cast('{{ var("min_date") }}' as date)
{%- endmacro %}

{% macro max_date() -%}
    cast('{{ var("max_date") }}' as date)
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
