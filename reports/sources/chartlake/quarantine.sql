-- Country-days (or narrower partitions) each publish held back, with the reason and the payload behind it.
select publish_id, country, chart_date, store, device, chart, partition, reason, payload_sha256
from analytics.quarantine
order by publish_id desc, chart_date, country
