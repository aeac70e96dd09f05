select
    store, country, device, chart, app_id, app_name, surge_start_date, breakout_date, surge_start_rank,
    from_outside_chart, surge_start_position, breakout_rank, surge_days, velocity_ranks_per_day, country_spread,
    array_to_string(spread_countries, ', ') as spread_countries, days_in_top_n, last_top_n_date, best_rank_in_run,
    still_in_top_n
from analytics.mart_breakouts
where genre_id is null
order by breakout_date, country, app_name
