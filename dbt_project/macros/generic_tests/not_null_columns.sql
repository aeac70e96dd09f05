{#- Several columns are never null, checked in one scan instead of one test per column. A failure returns
    one row per offending column: column_name and how many rows hold a null there. -#}
{% test not_null_columns(model, columns) %}
with null_counts as (
    select
        {%- for column in columns %}
        count(*) filter (where {{ adapter.quote(column) }} is null) as {{ adapter.quote(column) }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
)
select column_name, null_rows
from (unpivot null_counts on columns(*) into name column_name value null_rows)
where null_rows > 0
{% endtest %}
