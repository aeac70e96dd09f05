{#- Grain test: no two rows share the same values of `combination_of_columns` (nulls compare equal,
    so a null genre_id is one value). Written here because dbt hub packages are unreachable. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by all
having count(*) > 1
{% endtest %}
