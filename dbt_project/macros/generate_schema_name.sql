{#- Models land in exactly the schema their folder names (staging, intermediate, marts), never in
    "<target schema>_<custom>": BI and the Dagster publish step look for lake.marts.<model>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
