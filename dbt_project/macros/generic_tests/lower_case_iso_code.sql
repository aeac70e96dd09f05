{#- ISO 3166-1 alpha-2 in lower case, as DESIGN.md's canonical row requires. -#}
{% test lower_case_iso_code(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and not regexp_full_match({{ column_name }}, '[a-z]{2}')
{% endtest %}
