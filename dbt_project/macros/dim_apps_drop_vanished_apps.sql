{#- Pre-hook of dim_apps: delete+insert by app_id can only replace apps the run emits, so an app this table
    saw on or after the window's start that no longer has any daily row (its only days were quarantined)
    is removed here, as a full rebuild would. -#}
{% macro dim_apps_drop_vanished_apps() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as t
    where t.last_seen_date >= {{ min_date() }}
      and not exists (select 1 from {{ ref('int_app_names_daily') }} as d where d.app_id = t.app_id)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
