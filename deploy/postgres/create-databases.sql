-- Run once by the postgres image on first start (/docker-entrypoint-initdb.d): one database per
-- service, owned by POSTGRES_USER. The migrations job creates the tables.
CREATE DATABASE message;
CREATE DATABASE time_consuming;
CREATE DATABASE receiver;
