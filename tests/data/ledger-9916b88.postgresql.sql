-- The ledger schema as release 0.1 (commit 9916b88) created it with create_all, before migrations.
CREATE TABLE category (
	id SERIAL NOT NULL,
	code VARCHAR(64) NOT NULL,
	name_id VARCHAR(100) NOT NULL,
	name_en VARCHAR(100) NOT NULL,
	unit VARCHAR(8) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);
CREATE TABLE city (
	id SERIAL NOT NULL,
	code VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	timezone VARCHAR(64) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);
CREATE TABLE dead_letter (
	id SERIAL NOT NULL,
	topic VARCHAR(500) NOT NULL,
	payload BYTEA NOT NULL,
	error TEXT NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_dead_letter_received_at ON dead_letter (received_at);
CREATE TABLE journal_entry (
	id SERIAL NOT NULL,
	txn_ref VARCHAR(120) NOT NULL,
	account VARCHAR(120) NOT NULL,
	amount_idr BIGINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	memo VARCHAR(200) NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_journal_entry_account ON journal_entry (account);
CREATE INDEX ix_journal_entry_txn_ref ON journal_entry (txn_ref);
CREATE TABLE bank (
	id SERIAL NOT NULL,
	code VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	city_id INTEGER NOT NULL,
	kecamatan VARCHAR(100) NOT NULL,
	kelurahan VARCHAR(100) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code),
	FOREIGN KEY(city_id) REFERENCES city (id)
);
CREATE TABLE member (
	id SERIAL NOT NULL,
	member_no VARCHAR(32) NOT NULL,
	name VARCHAR(200) NOT NULL,
	bank_id INTEGER NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (member_no),
	FOREIGN KEY(bank_id) REFERENCES bank (id)
);
CREATE TABLE price (
	id SERIAL NOT NULL,
	bank_id INTEGER NOT NULL,
	category_id INTEGER NOT NULL,
	price_per_kg_idr BIGINT NOT NULL,
	effective_from TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (bank_id, category_id, effective_from),
	FOREIGN KEY(bank_id) REFERENCES bank (id),
	FOREIGN KEY(category_id) REFERENCES category (id)
);
CREATE TABLE card (
	uid VARCHAR(20) NOT NULL,
	member_id INTEGER NOT NULL,
	PRIMARY KEY (uid),
	FOREIGN KEY(member_id) REFERENCES member (id)
);
CREATE TABLE deposit (
	id SERIAL NOT NULL,
	event_id VARCHAR(100) NOT NULL,
	member_id INTEGER NOT NULL,
	bank_id INTEGER NOT NULL,
	category_id INTEGER NOT NULL,
	net_g BIGINT NOT NULL,
	tare_g BIGINT NOT NULL,
	price_per_kg_idr BIGINT NOT NULL,
	amount_idr BIGINT NOT NULL,
	measured_at TIMESTAMP WITH TIME ZONE NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	gateway_id VARCHAR(64) NOT NULL,
	scale_id VARCHAR(64) NOT NULL,
	protocol VARCHAR(32) NOT NULL,
	stable BOOLEAN NOT NULL,
	raw_frames TEXT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (event_id),
	FOREIGN KEY(member_id) REFERENCES member (id),
	FOREIGN KEY(bank_id) REFERENCES bank (id),
	FOREIGN KEY(category_id) REFERENCES category (id)
);
CREATE INDEX ix_deposit_measured_at ON deposit (measured_at);
CREATE INDEX ix_deposit_member_id ON deposit (member_id);
