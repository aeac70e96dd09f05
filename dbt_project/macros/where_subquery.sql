{#- dbt's own get_where_subquery (the `where` config of data tests), but the `where` text is rendered again when
    the test runs. dbt renders a test's configs once, at parse time, and keeps the result in its partial-parse
    state: a `where` built from the run's window (date_window.sql) must be written escaped,
    "{% raw %}{{ in_date_window('chart_date') }}{% endraw %}", to reach the run unrendered. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and execute -%}
        {%- set where = render(where) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
