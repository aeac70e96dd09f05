select * from analytics.dim_countries order by 1
