//! The stable diagnostic codes. Each has a page `docs/errors/WFnnnn.md`
//! (a test checks both directions). Never renumber: add at the end.

macro_rules! codes {
    ($($name:ident = $code:literal, $title:literal;)*) => {
        $(#[doc = $title] pub const $name: &str = $code;)*
        /// Every code with its one-line title.
        pub const ALL: &[(&str, &str)] = &[$(($code, $title)),*];
    };
}

codes! {
    SYNTAX = "WF0001", "the text does not follow the language's grammar";
    UNKNOWN_STATUS = "WF0002", "a status name that the pipe does not define";
    UNKNOWN_FIELD = "WF0003", "a field name that the pipe does not define";
    UNKNOWN_TEAM = "WF0004", "a team or route name that the pipe does not define";
    UNKNOWN_SLA_KIND = "WF0005", "an SLA kind other than first_response, next_response or resolution";
    UNKNOWN_TEMPLATE = "WF0006", "a `from` that names a template no file defines";
    TEMPLATE_PARAM = "WF0007", "a template argument or parameter that does not match the template";
    DUPLICATE = "WF0008", "the same name defined twice";
    CHOICE_VALUE = "WF0009", "a value outside a choice field's list";
    WRONG_TYPE = "WF0010", "a value of the wrong type for its field or place";
    BAD_DURATION = "WF0011", "a duration that cannot be read";
    BAD_HOURS = "WF0012", "business hours or a time of day that cannot be read";
    BAD_DATE = "WF0013", "a date that cannot be read";
    BAD_TIMEZONE = "WF0014", "an unknown time zone";
    BAD_CRON = "WF0015", "a schedule (cron expression) that cannot be read";
    BAD_REGEX = "WF0016", "a regular expression that cannot be read";
    BAD_PHONE = "WF0017", "a phone number that cannot be read";
    NO_INITIAL = "WF0018", "a pipe without an initial status";
    SEVERAL_INITIAL = "WF0019", "a pipe with more than one initial status";
    FINAL_WITH_FLOW = "WF0020", "a final status with moves out of it";
    UNREACHABLE_STATUS = "WF0021", "a status that no flow can reach";
    FORBIDDEN_MOVE = "WF0022", "a rule that moves a card where the flow does not allow";
    ROUTE_WITHOUT_ELSE = "WF0023", "a route table without an `else` line";
    SLA_OVERLAP = "WF0024", "two SLA windows of the same kind that both apply";
    RULE_LOOP = "WF0025", "rules that can trigger each other forever";
    TEMPLATE_CYCLE = "WF0026", "templates built from each other in a circle";
    BAD_TEXT_TEMPLATE = "WF0027", "a reply or note text whose `{{ }}` parts cannot be read";
    BAD_SCRIPT = "WF0028", "a script that is missing or does not compile";
    UNKNOWN_TRIGGER = "WF0029", "a rule trigger the engine does not know";
    UNKNOWN_WORD = "WF0030", "a word that is not allowed in this place";
    BAD_EMAIL = "WF0031", "an agent e-mail address that cannot be read";
    UNKNOWN_PATH = "WF0032", "something a condition or text looks at that does not exist";
    BAD_OPERATOR = "WF0033", "an operator written the way programmers write it";
    SCHEDULE_WITHOUT_CARDS = "WF0034", "a schedule that acts on cards without saying which";
    BAD_URL = "WF0035", "a webhook address that cannot be read";
    MISSING_SETTING = "WF0036", "a pipe without something every pipe needs";
    NUMBER_TAKEN = "WF0037", "one WhatsApp number feeding two pipes";
    OPERATOR_TYPE = "WF0038", "a comparison that cannot apply to this kind of value";
}
