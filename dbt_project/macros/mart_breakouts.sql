{#- mart_breakouts' incremental rebuild (see the model): the first chart date it reads rankings from. -#}
{% macro mart_breakouts_read_from() -%}
    ({{ min_date() }} - {{ 2 * (var('spread_window_days') | int) + (var('breakout_within_days') | int) }})
{%- endmacro %}

{#- Pre-hook of mart_breakouts: the breakouts an incremental run recomputes in full are deleted first, so
    one the window no longer has does not survive (delete+insert only replaces rows it emits). -#}
{% macro mart_breakouts_drop_rebuilt_rows() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where breakout_date >= {{ min_date() }} - {{ var('spread_window_days') | int }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
