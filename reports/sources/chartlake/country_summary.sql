select
    chart_date, store, country, device, chart, previous_chart_date, chart_size, number_one_app_id,
    number_one_app_name, top_n_entries, top_n_exits, top_n_churn, top_100_entries, top_100_exits, chart_entries,
    chart_exits, watchlist_overtaken_count, watchlist_overtaken_apps
from analytics.mart_daily_country_summary
where genre_id is null
order by chart_date, store, country, device, chart
