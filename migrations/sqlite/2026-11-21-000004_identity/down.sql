DROP TABLE login_attempts;
DROP TABLE api_tokens;
DROP TABLE users;
