"""Loading the packaged ODCS contracts, and the errors a broken contract gives."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pycountry
import pytest
from pyspark.sql import types as T

from medallion.contracts import ContractError, contract_names, load_contract, load_contract_file
from medallion.contracts.loader import parse_physical_type

# The typed bronze schemas silver is written against (without the metadata columns).
BRONZE_SCHEMAS = {
    "snowflake/customers": "customer_id:string,first_name:string,last_name:string,email:string,"
    "phone:string,country:string,segment:string,created_at:timestamp,updated_at:timestamp",
    "snowflake/products": "product_id:string,sku:string,product_name:string,category:string,"
    "subcategory:string,brand:string,price_usd:decimal(18,2),cost_usd:decimal(18,2),"
    "active:boolean,created_at:timestamp,updated_at:timestamp",
    "snowflake/orders": "order_id:string,customer_id:string,product_id:string,order_ts:timestamp,"
    "quantity:int,unit_price:decimal(18,2),amount:decimal(18,2),currency:string,status:string,"
    "updated_at:timestamp",
    "redshift/customer_behavior": "customer_id:string,event_date:date,login_count:int,"
    "page_views:int,session_duration_minutes:decimal(10,2),purchases:int,revenue:decimal(18,2)",
    "fx/fx_rates": "date:date,base_ccy:string,quote_ccy:string,rate:decimal(18,8),"
    "bid_rate:decimal(18,8),ask_rate:decimal(18,8),mid_rate:decimal(18,8),source:string",
    "crm/accounts": "Id:string,Name:string,Type:string,Industry:string,"
    "AnnualRevenue:decimal(18,2),NumberOfEmployees:int,BillingCountry:string,OwnerId:string,"
    "External_Customer_Id__c:string,CreatedDate:timestamp,LastModifiedDate:timestamp",
    "crm/contacts": "Id:string,AccountId:string,FirstName:string,LastName:string,Email:string,"
    "Phone:string,Title:string,CreatedDate:timestamp,LastModifiedDate:timestamp",
    "crm/opportunities": "Id:string,AccountId:string,Name:string,StageName:string,"
    "Amount:decimal(18,2),CurrencyIsoCode:string,Probability:int,CloseDate:date,"
    "IsClosed:boolean,IsWon:boolean,CreatedDate:timestamp,LastModifiedDate:timestamp",
    "kafka/order_events": "event_id:string,topic:string,partition:int,offset:bigint,"
    "order_id:string,event_type:string,event_ts:timestamp,status:string,"
    "metadata:map<string,string>",
}

CUSTOMERS_YAML = Path(__file__).parents[3] / "src/medallion/contracts/snowflake/customers.yaml"


def test_every_source_table_has_a_contract():
    assert contract_names() == sorted(BRONZE_SCHEMAS)


@pytest.mark.parametrize("name", sorted(BRONZE_SCHEMAS))
def test_contract_states_the_binding_bronze_schema(name):
    contract = load_contract(name)
    assert contract.name == name
    assert contract.spark_schema().simpleString() == f"struct<{BRONZE_SCHEMAS[name]}>"
    assert contract.primary_key
    assert contract.custom["partitionColumns"] == ["_run_date"]


@pytest.mark.parametrize("name", sorted(BRONZE_SCHEMAS))
def test_foreign_keys_point_at_real_columns(name):
    for key in load_contract(name).foreign_keys:
        target = load_contract(key.references)
        assert set(key.referenced_columns) <= set(target.column_names)
        assert set(key.columns) <= set(load_contract(name).column_names)


def test_foreign_keys_are_declared_for_silver():
    keys = {
        (name, key.columns, key.references)
        for name in BRONZE_SCHEMAS
        for key in load_contract(name).foreign_keys
    }
    assert keys == {
        ("snowflake/orders", ("customer_id",), "snowflake/customers"),
        ("snowflake/orders", ("product_id",), "snowflake/products"),
        ("crm/accounts", ("External_Customer_Id__c",), "snowflake/customers"),
        ("crm/contacts", ("AccountId",), "crm/accounts"),
        ("crm/opportunities", ("AccountId",), "crm/accounts"),
        ("redshift/customer_behavior", ("customer_id",), "snowflake/customers"),
        ("kafka/order_events", ("order_id",), "snowflake/orders"),
    }


def test_code_lists_come_from_pycountry():
    currency = load_contract("snowflake/orders").column("currency")
    country = load_contract("snowflake/customers").column("country")
    assert currency.allowed_values == {c.alpha_3 for c in pycountry.currencies}
    assert country.allowed_values == {c.alpha_2 for c in pycountry.countries}
    assert {"USD", "EUR", "KRW", "HUF", "JPY"} <= currency.allowed_values
    assert "QQQ" not in currency.allowed_values and "XX" not in country.allowed_values


def test_fx_contract_keys_and_rate_rules():
    fx = load_contract("fx/fx_rates")
    assert fx.primary_key == ["date", "base_ccy", "quote_ccy"]
    rate = fx.column("rate")
    assert rate.range is not None and rate.range.exclusive_minimum == 0
    assert rate.jump is not None and rate.jump.group_by == ("quote_ccy",)
    assert [r.rule for r in fx.expression_rules] == ["rate:range"]
    assert fx.format == "jsonl" and not fx.quarantine_duplicates


def test_rule_ids_cover_the_defect_taxonomy():
    taxonomy = {
        "snowflake/customers": ["email:required", "country:allowed_values", "email:pattern",
                                "created_at:type", "_record:malformed", "_record:duplicate"],
        "snowflake/orders": ["customer_id:required", "currency:allowed_values",
                             "quantity:range", "order_ts:type"],
        "snowflake/products": ["product_name:required", "price_usd:range"],
        "crm/accounts": ["Name:required", "BillingCountry:allowed_values"],
        "crm/contacts": ["LastName:required", "Email:pattern"],
        "crm/opportunities": ["CloseDate:required", "CurrencyIsoCode:allowed_values",
                              "StageName:allowed_values", "Probability:range"],
        "redshift/customer_behavior": ["customer_id:required", "page_views:range",
                                       "event_date:type"],
        "fx/fx_rates": ["quote_ccy:allowed_values", "rate:range", "rate:jump",
                        "_record:malformed"],
        "kafka/order_events": ["order_id:required", "event_type:allowed_values",
                               "_record:malformed"],
    }  # fmt: skip
    for name, rules in taxonomy.items():
        assert set(rules) <= set(load_contract(name).rule_ids()), name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("string", T.StringType()),
        ("int", T.IntegerType()),
        ("bigint", T.LongType()),
        ("decimal(18,8)", T.DecimalType(18, 8)),
        ("DECIMAL(10, 2)", T.DecimalType(10, 2)),
        ("timestamp", T.TimestampType()),
        ("map<string,string>", T.MapType(T.StringType(), T.StringType(), True)),
        ("array<int>", T.ArrayType(T.IntegerType(), True)),
    ],
)
def test_physical_types(text, expected):
    assert parse_physical_type(text) == expected


@pytest.mark.parametrize("text", ["strng", "decimal(40,2)", "decimal(4,6)", "map<string>"])
def test_unknown_physical_types_are_rejected(text):
    with pytest.raises(ValueError):
        parse_physical_type(text)


def test_unknown_contract_name_lists_the_known_ones():
    with pytest.raises(ContractError, match=r"no contract named 'snowflake/refunds'.*crm/accounts"):
        load_contract("snowflake/refunds")


# --- broken contracts: the message names the file and the field ---------------------------


def broken(tmp_path, old: str, new: str) -> Path:
    text = CUSTOMERS_YAML.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "customers.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        (
            "        logicalType: timestamp\n        physicalType: timestamp\n        required: true\n"
            "        logicalTypeOptions: {timezone: true}\n      - name: updated_at",
            "        logicalType: timestamp_tz\n        physicalType: timestamp\n        required: true\n"
            "      - name: updated_at",
            "schema[customers].properties[created_at].logicalType",
            "'timestamp_tz' is not one of",
        ),
        (
            "      - name: phone\n",
            "      - name: phone\n        nullable: true\n",
            "schema[customers].properties[phone]",
            "'nullable' was unexpected",
        ),
        (
            "kind: DataContract",
            "kind: Contract",
            "kind",
            "'Contract' is not one of",
        ),
        (
            "        physicalType: string\n        required: true\n        enum:",
            "        physicalType: text(5)\n        required: true\n        enum:",
            "schema[customers].properties[segment].physicalType",
            "unknown physical type 'text(5)'",
        ),
        (
            "      - name: created_at\n        logicalType: timestamp\n        physicalType: timestamp",
            "      - name: created_at\n        logicalType: timestamp\n        physicalType: decimal(18,2)",
            "schema[customers].properties[created_at].physicalType",
            "cannot hold logical type 'timestamp'",
        ),
        (
            "value: iso3166-alpha2",
            "value: iso3166",
            "schema[customers].properties[country].customProperties.allowedValues",
            "unknown code list 'iso3166'",
        ),
        (
            "property: schemaEvolution\n    value: strict",
            "property: schemaEvolution\n    value: lenient",
            "customProperties.schemaEvolution",
            "must be one of strict, additive",
        ),
        (
            "property: landingFormat",
            "property: landingFmt",
            "customProperties[0].property",
            "unknown property 'landingFmt'",
        ),
        (
            "implementation: {check: duplicate}",
            "implementation: {check: unique_rows}",
            "schema[customers].quality[0].implementation.check",
            "support 'duplicate' and 'expression'",
        ),
        (
            '        logicalTypeOptions: {pattern: "^C[0-9]{8}$"}',
            '        logicalTypeOptions: {pattern: "^C[0-9{8}$"}',
            "schema[customers].properties[customer_id].logicalTypeOptions.pattern",
            "is not a valid regex",
        ),
        (
            "name: snowflake/customers",
            "name: customers",
            "name",
            "<source>/<table>",
        ),
        (
            "            value: 1 day\n",
            "            value: tomorrow\n",
            "schema[customers].properties[updated_at].customProperties.notAfterDelivery",
            "must be a duration such as '24 hours'",
        ),
        (
            "      - name: phone\n",
            "      - name: phone\n        customProperties: [{property: notAfterDelivery, value: 1 day}]\n",
            "schema[customers].properties[phone].customProperties.notAfterDelivery",
            "only applies to date and timestamp columns",
        ),
    ],
    ids=[
        "logical-type",
        "unknown-key",
        "kind",
        "physical-type",
        "type-mismatch",
        "code-list",
        "evolution-policy",
        "custom-property",
        "quality-check",
        "regex",
        "name",
        "future-duration",
        "future-on-a-string",
    ],
)
def test_a_broken_contract_names_file_and_field(tmp_path, old, new, field, problem):
    path = broken(tmp_path, old, new)
    with pytest.raises(ContractError) as raised:
        load_contract_file(path)
    message = str(raised.value)
    assert str(path) in message
    assert field in message
    assert problem in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = broken(tmp_path, "  - name: customers\n", "  - name: customers\n   bad: [\n")
    with pytest.raises(ContractError, match=rf"{path} is not valid YAML at line \d+"):
        load_contract_file(path)


def test_a_contract_loaded_under_another_name_is_rejected(tmp_path):
    path = broken(tmp_path, "version: 1.0.0", "version: 1.0.1")
    with pytest.raises(ContractError, match=r"field 'name': is 'snowflake/customers' but"):
        load_contract_file(path, name="snowflake/orders")


def test_minimal_contract_with_every_rule_kind(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        textwrap.dedent(
            """
            apiVersion: v3.2.0
            kind: DataContract
            id: t
            name: test/items
            version: 1.0.0
            status: draft
            schema:
              - name: items
                properties:
                  - {name: id, logicalType: string, physicalType: string, primaryKey: true,
                     required: true, logicalTypeOptions: {pattern: "^I[0-9]+$"}}
                  - {name: qty, logicalType: integer, physicalType: int,
                     logicalTypeOptions: {minimum: 0, maximum: 10}}
                  - {name: day, logicalType: date, physicalType: date,
                     logicalTypeOptions: {minimum: "2020-01-01"}}
            """
        ),
        encoding="utf-8",
    )
    contract = load_contract_file(path)
    assert contract.rule_ids() == [
        "_record:malformed",
        "_record:encoding",
        "id:required",
        "id:pattern",
        "qty:type",
        "qty:range",
        "day:type",
        "day:range",
    ]
    assert contract.format == "csv" and contract.schema_evolution == "strict"


def test_docs_describe_the_rules_of_every_table():
    docs = (Path(__file__).parents[3] / "docs/DATA_CONTRACTS.md").read_text(encoding="utf-8")
    for name in contract_names():
        heading = f"#### `{name}`"
        assert heading in docs, name
        section = docs.split(heading, 1)[1].split("\n#### ", 1)[0]
        for column in load_contract(name).columns:
            if column.rule_ids():
                assert f"`{column.name}:" in section, (name, column.name)
