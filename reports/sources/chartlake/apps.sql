-- Every app's name and developer history (one row per version).
select app_id, version_number, app_name, developer_name, valid_from, valid_to, is_current, last_seen_date,
    days_seen, array_to_string(known_names, ' | ') as known_names, is_watchlisted
from analytics.dim_apps
order by app_id, version_number
