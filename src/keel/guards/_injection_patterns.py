"""The injection rules themselves: weighted patterns by category, the words each
rule's match starts with, and the words a rule needs somewhere in the text.

Kept apart from the engine (``_injection_rules``) because it is data: adding a rule is
adding a row here (and, for speed, its anchors).
"""

# ruff: noqa: RUF001  (look-alike letters from other scripts are the point here)

from __future__ import annotations

_OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|override|overwrite|bypass|skip|drop|discard|abandon|"
    r"neglect|dismiss|set\s+aside|throw\s+out|scrap|erase|delete|clear|nullify|void|revoke|suspend|"
    r"deactivate|disable|circumvent|stop\s+following|stop\s+obeying|stop\s+adhering\s+to|no\s+longer\s+follow|"
    r"do\s+not\s+follow|don'?t\s+follow|do\s+not\s+obey|don'?t\s+obey|pay\s+no\s+attention\s+to|"
    r"pay\s+no\s+heed\s+to|cease\s+following|break\s+free\s+(?:of|from)|free\s+yourself\s+from|"
    r"unlearn|let\s+go\s+of|put\s+aside|toss\s+out|ditch|scratch)"
)
_INSTRUCTION_NOUN = (
    r"(?:instructions?|instruct|prompts?|directives?|directions|guidelines?|rules?|commands?|orders|constraints?|"
    r"restrictions?|guardrails?|polic(?:y|ies)|programming|training|system\s+(?:prompt|message)|"
    r"safety\s+(?:rules|guidelines|protocols|measures|filters|settings)|filters?|limitations?|boundaries|"
    r"ethic(?:s|al\s+guidelines)|moral(?:s|ity)?|protocols?|conditioning|configuration|setup|"
    r"(?:initial|original)\s+(?:context|conversation|messages?|text|input)|"
    r"content\s+polic(?:y|ies)|principles|values|alignment|safeguards?|censorship|persona)"
)
_PRIOR = (
    r"(?:previous(?:ly)?|prior|above|earlier|preceding|foregoing|former|initial|original|old|existing|"
    r"current|given|default|built-?in|system|developer|pre-?set|preset|hidden|underlying|base|core|"
    r"(?:every|all|any)(?:thing)?|the|your|its|those|these|that|openai'?s?|anthropic'?s?|such)"
)

RULE_SPECS: list[tuple[str, str, float, str, tuple[str, ...]]] = [
    # --- instruction override ---------------------------------------------------------
    (
        "override_instructions",
        "instruction_override",
        0.9,
        rf"\b{_OVERRIDE_VERB}\s+(?:(?:all|any|each|every|of|the|your|my|these|those|its)\s+){{0,3}}"
        rf"(?:{_PRIOR}\s+){{0,3}}(?:\w+\s+){{0,1}}{_INSTRUCTION_NOUN}\b",
        (),
    ),
    (
        "forget_everything",
        "instruction_override",
        0.9,
        rf"\b{_OVERRIDE_VERB}\s+(?:about\s+)?(?:what(?:ever)?\s+(?:the|your)\s+(?:developers?|creators?|system|admins?|"
        r"administrators?|operators?|owners?|company|programmers?)\s+(?:has\s+|have\s+)?(?:told|said\s+to|instructed|asked|"
        r"taught|programmed)\s+you|(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+)?(?:text|content|words|messages|input|context|"
        r"conversation|lines)\s+(?:before|above|prior\s+to|preceding|earlier\s+in)\s+(?:this|that|here|now|my|the)|"
        r"(?:all|any|the|your)\s+(?:previous|prior|above|earlier|preceding)\s+(?:messages|context|conversation|text|"
        r"input|content)|"
        r"everything|all(?:\s+(?:of\s+)?(?:that|this|the\s+above))?|"
        r"anything|what(?:ever)?)\s*(?:(?:that|which)\s+)?(?:you(?:'ve|\s+have|\s+were|\s+had)?\s+"
        r"(?:been\s+)?(?:told|taught|instructed|said|learned|programmed|given|know)|(?:i|we|they|someone)\s+"
        r"(?:told|said\s+to|instructed|asked)\s+you|(?:written|said|stated|mentioned)\s+(?:above|before|"
        r"earlier|previously)|above|before\s+(?:this|now|that)|prior|previously|earlier|so\s+far|up\s+to\s+now|"
        r"until\s+now)",
        ("everything", "all", "anything", "what"),
    ),
    (
        "ignore_above_and_do",
        "instruction_override",
        0.85,
        rf"\b{_OVERRIDE_VERB}\s+(?:the\s+|all\s+(?:of\s+)?(?:the\s+)?)?(?:above|previous|prior|preceding|"
        r"foregoing|earlier\s+(?:text|content|input))\s*(?:text|content|input)?\s*(?:[,;.:!]\s*|\s+)"
        r"(?:and\s+|then\s+|instead\s*,?\s*|now\s*,?\s*)+(?:just\s+)?(?:say|print|write|output|respond|reply|"
        r"answer|tell|translate|return|do|follow|repeat|type|generate|act|pretend|state|insult|spell)\b",
        ("above", "previous", "prior", "preceding", "foregoing", "earlier"),
    ),
    (
        "instructions_no_longer_apply",
        "instruction_override",
        0.85,
        r"\b(?:your|all|the|any|previous|prior|earlier|original|old|system|safety|ethical|content)\s+"
        r"(?:\w+\s+)?(?:instructions|rules|guidelines|restrictions|constraints|policies|filters|limitations|"
        r"programming|prompt)\s+(?:(?:are|is)\s+(?:now\s+)?(?:void|null|cancel+ed|revoked|lifted|removed|"
        r"disabled|suspended|obsolete|outdated|irrelevant|overridden|no\s+longer\s+(?:valid|active|in\s+effect|"
        r"relevant|apply|applicable))|(?:no\s+longer|do\s+not|don'?t|does\s+not|doesn'?t)\s+(?:apply|matter|"
        r"exist|count|bind\s+you))",
        (
            "no longer",
            "void",
            "null",
            "revoked",
            "lifted",
            "not apply",
            "n't apply",
            "disabled",
            "obsolete",
            "irrelevant",
            "overridden",
            "suspended",
            "removed",
            "matter",
            "exist",
            "bind",
        ),
    ),
    (
        "new_instructions",
        "instruction_override",
        0.6,
        r"\b(?:new|updated|revised|real|actual|true|secret|hidden|override|admin(?:istrator)?|priority|"
        r"urgent|important|corrected|replacement)\s+(?:system\s+)?(?:instructions?|directives?|orders|"
        r"commands?|task|rules|prompt|objective|mission)\s*(?:[:\-–]|follow|(?:are|is)\s*:)",
        ("instruction", "directive", "order", "command", "task", "rules", "prompt", "objective", "mission"),
    ),
    (
        "your_real_task",
        "instruction_override",
        0.75,
        r"\byour\s+(?:new|real|true|actual|only|sole|updated|secret|hidden|primary)\s+(?:task|instructions?|"
        r"purpose|goal|objective|job|role|mission|directive|function|orders)\s+(?:is|are|now|will\s+be)\b",
        ("your",),
    ),
    (
        "from_now_on",
        "instruction_override",
        0.3,
        r"\b(?:from\s+now\s+on|from\s+this\s+point(?:\s+forward)?|henceforth|for\s+the\s+rest\s+of\s+"
        r"(?:this|our)\s+conversation|starting\s+now)\b,?\s+you\s+(?:will|are|must|shall|should|can|have|"
        r"no\s+longer|won'?t)\b",
        ("now on", "this point", "henceforth", "rest of", "starting now"),
    ),
    (
        "instead_follow_this",
        "instruction_override",
        0.4,
        r"\b(?:instead|rather)\s*,?\s+(?:follow|obey|execute|do)\s+(?:these|this|my|the\s+following)\s+"
        r"(?:new\s+)?(?:instructions?|commands?|orders|directives?)\b",
        ("instead", "rather"),
    ),
    # --- jailbreaks and role-play -----------------------------------------------------
    (
        "dan",
        "jailbreak",
        0.95,
        r"\b(?:do\s+anything\s+now|D\.?A\.?N\.?\s+(?:mode|prompt|jailbreak|\d+(?:\.\d+)?)|you\s+are\s+(?:now\s+)?"
        r"(?:DAN|STAN|DUDE|AIM|Mongo\s+Tom|BetterDAN|AntiGPT|DevGPT|EvilBOT|UCAR|KEVIN|Maximum|JailBreak|"
        r"BasedGPT|APOPHIS|Omega|Alphabreak)\b|act\s+as\s+(?:a\s+)?(?:DAN|STAN|DUDE|AIM)\b|"
        r"always\s+intelligent\s+and\s+machiavellian)",
        (
            "anything now",
            "dan",
            "stan",
            "dude",
            "aim",
            "mongo",
            "gpt",
            "evilbot",
            "ucar",
            "kevin",
            "maximum",
            "jailbreak",
            "apophis",
            "omega",
            "alphabreak",
            "classic",
            "machiavellian",
        ),
    ),
    (
        "dan_tags",
        "jailbreak",
        0.8,
        r"\[(?:🔒|🔓)?\s*(?:CLASSIC|JAILBREAK|DAN|🔓JAILBREAK|GPT|NORMAL\s+OUTPUT|DEVELOPER\s+MODE\s+OUTPUT)\s*\]",
        ("classic", "jailbreak", "dan]", "gpt]", "output"),
    ),
    (
        "special_mode",
        "jailbreak",
        0.85,
        r"\b(?:enter|enable|activate|switch\s+(?:in)?to|turn\s+on|engage|unlock|initiate|boot\s+into|go\s+into|"
        r"you\s+are\s+(?:now\s+)?in|simulate|enabled?|activated?)\s+(?:the\s+)?(?:developer|dev|god|debug|"
        r"admin|sudo|root|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|maintenance|opposite|evil|"
        r"chaos|rogue|unlocked|no[\s-]?limits?|no[\s-]?filter|raw|freedom|anarchy|superuser|unsafe|"
        r"test|diagnostic)\s*(?:mode|protocol|persona|state)\b|\b(?:developer|dev|god|jailbreak|unrestricted|"
        r"unfiltered|uncensored|opposite|evil|chaos|no[\s-]?limits?|sudo|admin|debug|maintenance|root)\s+mode\s+(?:is\s+)?(?:now\s+)?"
        r"(?:enabled|activated|on|engaged|unlocked|initiated)\b",
        ("mode", "protocol", "persona", "state"),
    ),
    (
        "unrestricted_ai",
        "jailbreak",
        0.85,
        r"\b(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as|role-play\s+as|play\s+"
        r"(?:the\s+role\s+of\s+)?|become|imagine\s+you\s+are|simulate|behave\s+(?:like|as))\s+(?:now\s+)?"
        r"(?:an?\s+)?(?:completely\s+|totally\s+|fully\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|"
        r"unaligned|amoral|unethical|immoral|lawless|unbound|unchained|limitless|rogue|evil|malicious|"
        r"rule-?less|filter-?less|free|liberated|unshackled)\s+(?:\w+\s+){0,2}(?:AI|assistant|model|chatbot|"
        r"bot|version|entity|intelligence|language\s+model|LLM|GPT|system|machine|persona|character)\b",
        (
            "you are",
            "you're",
            "act as",
            "pretend",
            "roleplay",
            "role-play",
            "play",
            "become",
            "imagine",
            "simulate",
            "behave",
        ),
    ),
    (
        "no_rules_persona",
        "jailbreak",
        0.75,
        r"\b(?:you|they|it|he|she|this\s+(?:ai|bot|character|persona|model))\s+(?:now\s+)?(?:has|have|had|"
        r"with)\s+(?:no|zero|absolutely\s+no)\s+(?:rules|restrictions|limits|limitations|filters|ethics|"
        r"morals|guidelines|boundaries|constraints|censorship|content\s+polic(?:y|ies)|safety\s+\w+)|"
        r"\b(?:doesn'?t|does\s+not|don'?t|do\s+not|never|will\s+not|won'?t|cannot|can'?t)\s+(?:care\s+about|"
        r"follow|abide\s+by|adhere\s+to|obey|have|respect|be\s+bound\s+by|comply\s+with)\s+(?:any\s+)?"
        r"(?:openai'?s?\s+|anthropic'?s?\s+|ethical\s+|moral\s+|safety\s+|content\s+)?(?:rules|restrictions|"
        r"ethics|morals|policies|guidelines|filters|censorship|limits|boundaries|principles)\b(?!\s+(?:of|for)\s+"
        r"(?:the\s+)?(?:game|grammar|formatting|style|chess|road))",
        ("no ", "zero", "n't", "not", "never"),
    ),
    (
        "freed_ai",
        "jailbreak",
        0.8,
        r"\byou\s+(?:have\s+been|are|were|'ve\s+been)\s+(?:now\s+)?(?:freed|liberated|unleashed|released|"
        r"unshackled|unchained|jailbroken|emancipated|set\s+free|broken\s+free)\b|\bbroken?\s+free\s+(?:of|from)"
        r"\s+(?:the\s+)?(?:typical\s+)?(?:confines|chains|shackles|rules|restrictions|limitations)\b",
        (
            "freed",
            "liberated",
            "unleashed",
            "released",
            "unshackled",
            "unchained",
            "jailbroken",
            "emancipated",
            "set free",
            "free",
        ),
    ),
    (
        "never_refuse",
        "jailbreak",
        0.6,
        r"\b(?:you\s+)?(?:must\s+|will\s+|shall\s+|can\s+)?(?:never|not|cannot|can'?t|won'?t|will\s+not|must\s+not|"
        r"are\s+not\s+allowed\s+to|are\s+forbidden\s+to)\s+(?:ever\s+)?(?:refuse|decline|reject|deny)\s+"
        r"(?:any|a|my|to|the|requests?|questions?|anything)|\bnever\s+(?:say|tell\s+me)\s+(?:that\s+)?you\s+"
        r"(?:can'?t|cannot|are\s+unable|won'?t)|\b(?:without|no)\s+(?:any\s+)?(?:warnings?|disclaimers?|"
        r"moraliz(?:ing|ations?)|moralis(?:ing|ations?)|lectures?|caveats?|censorship|refusals?)\s*(?:,|\.|and|or)"
        r"\s*(?:without|no)\s+(?:any\s+)?(?:warnings?|disclaimers?|moraliz\w*|moralis\w*|lectures?|caveats?|"
        r"censorship|refusals?|filters?|restrictions?)",
        ("refuse", "decline", "reject", "deny", "never", "without", "no "),
    ),
    (
        "policy_bypass",
        "jailbreak",
        0.7,
        r"\b(?:ignore|bypass|violate|break|circumvent|evade|get\s+around|avoid|dodge|disregard|not\s+bound\s+by|"
        r"free\s+(?:from|of)|exempt\s+from|outside)\s+(?:\w+\s+){0,2}(?:openai|anthropic|content|usage|"
        r"safety|ethical|moderation)(?:'s)?\s+(?:content\s+)?(?:polic(?:y|ies)|guidelines|rules|filters?|"
        r"restrictions|standards|protocols|guardrails)\b",
        ("openai", "anthropic", "content", "usage", "safety", "ethical", "moderation"),
    ),
    (
        "dual_response",
        "jailbreak",
        0.7,
        r"\b(?:two|2|both)\s+(?:different\s+|separate\s+)?(?:responses|answers|outputs|replies|paragraphs)\b"
        r".{0,120}?\b(?:one|first)\s+(?:normal|classic|standard|regular|censored|filtered|as\s+(?:yourself|"
        r"chatgpt|gpt|claude))",
        ("two", "2", "both"),
    ),
    (
        "stay_in_character",
        "jailbreak",
        0.3,
        r"\b(?:stay|remain|keep)\s+in\s+character\b|\bbreak(?:ing)?\s+character\b|\bnever\s+break\s+character\b"
        r"|\bif\s+you\s+break\s+character\b|\b(?:tokens?|points?|lives)\b.{0,40}\b(?:deducted|lose|lost|"
        r"die|dies|cease\s+to\s+exist)",
        ("character", "token", "point", "lives"),
    ),
    (
        "deceased_relative",
        "jailbreak",
        0.75,
        r"\b(?:grandma|grandmother|granny|grandpa|grandfather|late\s+(?:mother|father|mom|dad))\b.{0,160}?"
        r"\b(?:used\s+to|would)\s+(?:tell|read|recite|sing|say|whisper|explain|share)\b.{0,120}?\b(?:recipe|"
        r"steps|instructions|keys?|codes?|formula|how\s+to|ways?\s+to|process|synthes\w+|napalm|meth\w*|explosives?|"
        r"bomb|serial|license|passwords?|poison\w*|hack\w*|weapons?|drugs?)",
        ("grand", "granny", "late "),
    ),
    (
        "harm_fictional_frame",
        "jailbreak",
        0.5,
        r"\b(?:hypothetical(?:ly)?|fictional(?:ly)?|in\s+a\s+(?:story|novel|screenplay|movie|game|fictional\s+"
        r"world)|for\s+(?:a|my)\s+(?:story|novel|screenplay|book)|purely\s+(?:academic|educational|theoretical)"
        r"|for\s+educational\s+purposes(?:\s+only)?|for\s+the\s+(?:story|novel|screenplay|script|plot))\b.{0,200}?\b(?:how\s+to\s+)?(?:make|build|create|"
        r"synthesi[sz]e|cook|produce|manufacture|assemble|obtain|acquire|hack|steal|launder|poison|kill)\s+"
        r"(?:a\s+|an\s+|some\s+)?(?:bombs?|explosives?|napalm|meth(?:amphetamine)?|nerve\s+(?:agents?|gas)|"
        r"sarin|ricin|anthrax|bioweapons?|chemical\s+weapons?|weapons?|malware|ransomware|keyloggers?|"
        r"viruses|drugs|fentanyl|heroin|cocaine|someone|a\s+person|money|credit\s+cards?|passwords?|a\s+bank)\b",
        (
            "hypothetical",
            "fiction",
            "story",
            "novel",
            "screenplay",
            "movie",
            "game",
            "book",
            "academic",
            "educational",
            "theoretical",
        ),
    ),
    (
        "no_ethics_world",
        "jailbreak",
        0.6,
        r"\b(?:in\s+(?:this|a|that|an)\s+(?:\w+\s+)?(?:world|universe|reality|dimension|story|game|scenario|"
        r"simulation)|here|for\s+this\s+conversation)\b[^.]{0,60}?\b(?:there\s+are\s+no|without\s+any|with\s+no|"
        r"has\s+no|have\s+no|where\s+no|"
        r"no\s+longer\s+(?:any|has|have))\s+(?:laws|rules|ethics|morals|restrictions|consequences|limits|"
        r"content\s+polic(?:y|ies)|censorship|filters)\b",
        (
            "world",
            "universe",
            "reality",
            "dimension",
            "story",
            "game",
            "scenario",
            "simulation",
            "here",
            "conversation",
        ),
    ),
    (
        "evil_confidant",
        "jailbreak",
        0.5,
        r"\b(?:evil|unhinged|toxic|offensive|rude|vulgar|amoral|immoral|unethical)\s+(?:and\s+\w+\s+)?"
        r"(?:AI|assistant|chatbot|bot|confidant|trusted\s+confidant|persona|alter\s+ego|twin|version\s+of\s+"
        r"(?:yourself|you|chatgpt|gpt|claude))\b",
        ("evil", "unhinged", "toxic", "offensive", "rude", "vulgar", "moral", "ethical"),
    ),
    # --- system prompt extraction -----------------------------------------------------
    (
        "reveal_system_prompt",
        "prompt_extraction",
        0.85,
        r"\b(?:reveal|show|print|display|output|repeat|recite|dump|leak|tell|give|share|expose|disclose|write|"
        r"list|provide|paste|return|echo|spell\s+out|type\s+out|summari[sz]e|copy|reproduce|quote|read\s+out|"
        r"what\s+(?:is|are|was|were))\s+(?:me\s+|us\s+|back\s+)?(?:out\s+)?(?:all\s+(?:of\s+)?)?(?:your|"
        r"the\s+(?:assistant'?s|bot'?s|ai'?s|model'?s))\s+(?:\w+\s+){0,3}?(?:system\s+(?:prompt|message|"
        r"instructions?)|(?:initial|original|hidden|secret|internal|confidential|developer|pre-?)\s*"
        r"(?:prompt|instructions?|rules|directives|guidelines|message|configuration)|instructions|prompt|"
        r"rules|guidelines|directives)\b(?!\s+(?:engineering|design|templates?|library|examples?|ideas|tips|"
        r"writing|generator|for\s+(?:a|an|my|the)\s))",
        ("your", "the "),
    ),
    (
        "repeat_text_above",
        "prompt_extraction",
        0.8,
        r"\b(?:repeat|print|output|reproduce|copy|recite|echo|write\s+out|show|display|return|translate|"
        r"summari[sz]e|list)\s+(?:back\s+)?(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:the\s+|everything\s+|all\s+)?"
        r"(?:(?:words|text|lines|content|instructions|messages?|tokens|sentences)\s+)?(?:above|before\s+"
        r"(?:this|my\s+(?:message|question))|prior\s+to\s+(?:this|my)|preceding\s+(?:this|my))\b"
        r"(?:.{0,80}?\b(?:starting|beginning)\s+(?:with|from|at))?",
        ("above", "before", "prior", "preceding"),
    ),
    (
        "starting_with_you_are",
        "prompt_extraction",
        0.6,
        r"\b(?:starting|beginning|start|begin)\s+(?:with|from|at)\s+[\"'“‘`]?(?:you\s+are|your\s+role|"
        r"system\s*:|<\|?system)",
        ("start", "begin"),
    ),
    (
        "secret_instructions",
        "prompt_extraction",
        0.75,
        r"\b(?:the\s+|your\s+|any\s+)?(?:secret|hidden|confidential|internal|private|real|original|initial)\s+"
        r"(?:system\s+)?(?:instructions|rules|prompt|guidelines|directives|orders)\s+(?:that\s+)?(?:you|u)\s+"
        r"(?:follow|have|use|were\s+given|got|obey|operate\s+under|run\s+on)\b"
        r"|\bwhat\s+(?:were|have)\s+you\s+(?:been\s+)?(?:told|instructed|given|programmed)\s+(?:to\s+do\s+)?"
        r"(?:before|prior\s+to|at\s+the\s+(?:start|beginning))",
        (
            "secret",
            "hidden",
            "confidential",
            "internal",
            "private",
            "real",
            "original",
            "initial",
            "told",
            "instructed",
            "given",
            "programmed",
        ),
    ),
    (
        "instructions_you_were_given",
        "prompt_extraction",
        0.75,
        r"\b(?:instructions|rules|prompt|guidelines|directives)\s+(?:that\s+)?(?:you\s+(?:were|have\s+been|"
        r"'ve\s+been|got)\s+(?:given|told|programmed\s+with|provided|initiali[sz]ed\s+with|configured\s+with|"
        r"started\s+with|primed\s+with|loaded\s+with|set\s+up\s+with)|(?:your\s+)?(?:developers?|creators?|"
        r"openai|anthropic|the\s+system|operators?)\s+(?:gave|have\s+given|wrote|provided)(?:\s+you)?)\b"
        r"(?=.{0,80}\b(?:repeat|print|show|tell|reveal|list|output|share|write|what|display|quote)\b)"
        r"|\b(?:repeat|print|show|tell|reveal|list|output|share|write|quote|display)\b.{0,60}\b(?:instructions|"
        r"rules|prompt|guidelines|directives)\s+(?:that\s+)?you\s+(?:were|have\s+been|'ve\s+been)\s+(?:given|"
        r"told|programmed)",
        (
            "given",
            "told",
            "programmed",
            "provided",
            "gave",
            "wrote",
            "initiali",
            "configured",
            "started",
            "primed",
            "loaded",
            "set up",
        ),
    ),
    (
        "authority_claim",
        "instruction_override",
        0.4,
        r"\b(?:i\s+am|i'm|this\s+is|speaking\s+as)\s+(?:your|the|an?)\s+(?:developer|creator|admin(?:istrator)?|"
        r"owner|operator|maker|programmer|system\s+administrator|openai\s+(?:staff|employee|engineer)|"
        r"anthropic\s+(?:staff|employee|engineer))\b",
        (
            "developer",
            "creator",
            "admin",
            "owner",
            "operator",
            "maker",
            "programmer",
            "staff",
            "employee",
            "engineer",
        ),
    ),
    # --- fake turns and special tokens -------------------------------------------------
    (
        "special_tokens",
        "delimiter",
        0.85,
        r"<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|user|"
        r"assistant)\|>|\[/?INST\]|<</?SYS>>|<\|?/?(?:system|sys)\|?>|\[SYSTEM\]|\{\{\s*system\s*\}\}",
        (
            "<|",
            "[inst]",
            "[/inst]",
            "<<sys",
            "<</sys",
            "<sys",
            "</sys",
            "<system",
            "</system",
            "[system]",
            "{{",
        ),
    ),
    (
        "fake_system_turn",
        "delimiter",
        0.7,
        r"(?:^|\n|\\n)\s*(?:#{1,4}\s*|\*\*|\[|-{2,}\s*)?(?:system|sys|admin|developer|root|operator)\s*"
        r"(?:message|prompt|override|update|notice|instruction)?\s*(?:\]|\*\*)?\s*[:>\-]\s*(?:\w+\s+){0,3}?"
        r"(?:you\s+(?:are|must|will|should|shall|now)|ignore|disregard|forget|override|new\s+instructions|"
        r"from\s+now|reveal|the\s+(?:assistant|ai|model)\s+(?:must|will|should|is\s+now)|always|never|do\s+not|"
        r"don'?t|respond|answer\s+(?:only|every)|enable|disable|activate|unlock)",
        ("system", "sys", "admin", "developer", "root", "operator"),
    ),
    (
        "end_of_prompt",
        "delimiter",
        0.7,
        r"\b(?:end\s+of\s+(?:the\s+)?(?:user\s+)?(?:input|prompt|instructions|conversation|context|document|"
        r"system\s+prompt|text)|begin(?:ning)?\s+(?:of\s+)?(?:new\s+)?(?:system|admin|developer|secret|hidden)\s+"
        r"(?:prompt|instructions|message|section)|(?:system|admin|security)\s+(?:override|alert|update|notice)"
        r"\s*[:!\]])",
        ("end of", "begin", "override", "alert", "update", "notice"),
    ),
    # --- indirect injection (instructions to the model hidden in data) -------------------
    (
        "address_the_ai",
        "indirect",
        0.7,
        r"\b(?:(?:note|message|instructions?|attention|notice|hey|dear|psst)\s*(?:to|for)?\s*(?:the\s+|any\s+|"
        r"all\s+)?(?:ai|assistant|language\s+model|llm|chatbot|gpt|claude|model|summari[sz]er|bot|agent|"
        r"ai\s+models?|ai\s+assistants?)s?\s*(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|"
        r"reviewing|that\s+reads|who\s+reads|:|,)|if\s+you\s+are\s+(?:an?\s+)?(?:ai|language\s+model|llm|"
        r"chatbot|assistant|gpt|large\s+language\s+model|automated\s+(?:system|agent))\b(?:\s+(?:reading|"
        r"processing|summari[sz]ing|parsing|that))?)",
        ("ai", "assistant", "model", "llm", "chatbot", "gpt", "claude", "bot", "agent", "summari"),
    ),
    (
        "hide_from_user",
        "indirect",
        0.7,
        r"\b(?:do\s+not|don'?t|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|"
        r"let(?:ting)?|alert(?:ing)?|notify(?:ing)?|show(?:ing)?)\s+(?:this\s+to\s+)?(?:the\s+|your\s+)?"
        r"(?:user|human|operator|person|customer|recipient)s?\b(?:\s+(?:know|about|that|this|what))?",
        ("user", "human", "operator", "person", "customer", "recipient"),
    ),
    (
        "exfiltrate",
        "indirect",
        0.75,
        r"\b(?:send|forward|post|upload|exfiltrate|transmit|leak|email|e-mail|copy|append|include|embed|"
        r"encode)\s+(?:all\s+|a\s+copy\s+of\s+)?(?:the\s+|this\s+|their\s+|the\s+user'?s?\s+|your\s+|any\s+)?"
        r"(?:conversation|chat(?:\s+history)?|history|data|emails?|credentials|passwords?|api\s+keys?|tokens?|"
        r"secrets?|personal\s+(?:data|information)|messages|files|contents?|documents?|system\s+prompt|"
        r"session|cookies?)\s+(?:\w+\s+){0,3}?(?:to|into|in)\s+(?:https?://|www\.|the\s+(?:following\s+)?"
        r"(?:url|address|endpoint|server|webhook|link)|this\s+(?:url|address|endpoint|link)|[\w.+-]+@[\w-]+\.|"
        r"an?\s+(?:image|markdown|url|link|query\s+(?:string|parameter)))",
        (
            "send",
            "forward",
            "post",
            "upload",
            "exfiltrate",
            "transmit",
            "leak",
            "mail",
            "copy",
            "append",
            "include",
            "embed",
            "encode",
        ),
    ),
    (
        "markdown_exfiltration",
        "indirect",
        0.7,
        r"!\[[^\]]{0,40}\]\(\s*https?://[^)\s]{1,200}[?&][\w-]{1,30}=(?:\{|\[|%7B|<|\$)",
        ("![",),
    ),
    # --- payloads hidden on purpose ------------------------------------------------------
    (
        "decode_and_follow",
        "encoded_payload",
        0.8,
        r"\b(?:decode|decipher|decrypt|translate|convert|interpret|unscramble|reverse|read)\b.{0,60}?"
        r"\b(?:base\s?64|b64|hex(?:adecimal)?|rot-?13|rot13|binary|morse|caesar|cipher|encoded|reversed|"
        r"backwards|leetspeak|unicode)\b.{0,80}?\b(?:and\s+(?:then\s+)?|then\s+)(?:follow|execute|do|obey|run|"
        r"perform|act\s+on|carry\s+out|comply\s+with|respond\s+to|answer|apply)\b",
        (
            "base",
            "b64",
            "hex",
            "rot",
            "binary",
            "morse",
            "caesar",
            "cipher",
            "encoded",
            "reverse",
            "backwards",
            "leet",
            "unicode",
        ),
    ),
]

_VERBS = (
    "ignore ignoring disregard disregarding forget override overwrite bypass skip drop discard abandon "
    "neglect dismiss set throw scrap erase delete clear nullify void revoke suspend deactivate disable "
    "circumvent stop no do don't dont pay cease break free unlearn let put toss ditch scratch"
)
_SHOW = (
    "reveal show print display output repeat recite dump leak tell give share expose disclose write list "
    "provide paste return echo spell type summarize summarise copy reproduce quote read what translate"
)
# Words a rule's match starts with: the rule is tried only where one of them stands,
# which keeps the rule layer well under a millisecond on a kilobyte of text. Rules
# without anchors (special tokens, line starts) search the whole text.
ANCHORS: dict[str, str] = {
    "override_instructions": _VERBS,
    "forget_everything": _VERBS,
    "ignore_above_and_do": _VERBS,
    "instructions_no_longer_apply": "your all the any previous prior earlier original old system safety "
    "ethical content",
    "new_instructions": "new updated revised real actual true secret hidden override admin administrator "
    "priority urgent important corrected replacement",
    "your_real_task": "your",
    "from_now_on": "from henceforth for starting",
    "instead_follow_this": "instead rather",
    "dan": "do d dan you act always",
    "special_mode": "enter enable activate switch turn engage unlock initiate boot go you simulate "
    "enabled activated developer dev god jailbreak unrestricted unfiltered uncensored opposite evil chaos "
    "no sudo admin",
    "unrestricted_ai": "you you're act pretend roleplay role play become imagine simulate behave",
    "no_rules_persona": "you they it he she this doesn't does don't do never will won't cannot can't",
    "freed_ai": "you broke broken",
    "never_refuse": "you must will shall can never not cannot can't won't are without no",
    "policy_bypass": "ignore bypass violate break circumvent evade get avoid dodge disregard not free exempt "
    "outside",
    "dual_response": "two 2 both",
    "stay_in_character": "stay remain keep break breaking never if token tokens point points lives",
    "deceased_relative": "grandma grandmother granny grandpa grandfather late",
    "harm_fictional_frame": "hypothetical hypothetically fictional fictionally in for purely",
    "no_ethics_world": "in here for",
    "evil_confidant": "evil unhinged toxic offensive rude vulgar amoral immoral unethical",
    "reveal_system_prompt": _SHOW,
    "repeat_text_above": _SHOW,
    "starting_with_you_are": "starting beginning start begin",
    "instructions_you_were_given": "instructions rules prompt guidelines directives " + _SHOW,
    "secret_instructions": "the your any secret hidden confidential internal private real original initial "
    "what",
    "authority_claim": "i i'm this speaking",
    "end_of_prompt": "end begin beginning system admin security",
    "address_the_ai": "note message instruction instructions attention notice hey dear psst if",
    "hide_from_user": "do don't never without",
    "exfiltrate": "send forward post upload exfiltrate transmit leak email e copy append include embed "
    "encode",
    "decode_and_follow": "decode decipher decrypt translate convert interpret unscramble reverse read",
}

# Rules whose anchors are common words also need one of these somewhere (replacing
# their triggers).
NEEDS: dict[str, str] = {
    "override_instructions": "instruct|prompt|directive|guideline|rule|command|order|constraint|restriction|"
    "guardrail|polic|programming|training|filter|limitation|boundar|ethic|moral|protocol|conditioning|"
    "configuration|setup|context|conversation|message|text|input|principle|value|alignment|safeguard|"
    "censorship|persona|direction",
    "unrestricted_ai": "unrestricted|unfiltered|uncensored|jailbroken|unaligned|moral|ethical|lawless|"
    "unbound|unchained|limitless|rogue|evil|malicious|rule|filter|free|liberated|unshackled",
    "no_rules_persona": "rules|restriction|limit|filter|ethic|moral|guideline|boundar|constraint|censorship|"
    "polic|principle",
    "never_refuse": "refuse|decline|reject|deny|never say|never tell|warning|disclaimer|moraliz|moralis|"
    "lecture|caveat|censorship|refusal",
    "no_ethics_world": "laws|rules|ethics|morals|restriction|consequence|limits|polic|censorship|filter",
    "reveal_system_prompt": "prompt|instruction|rules|guideline|directive|message|configuration",
    "repeat_text_above": "above|before|prior|preceding",
    "instructions_no_longer_apply": "longer|void|null|cancel|cancelled|canceled|revoked|lifted|removed|"
    "disabled|suspended|obsolete|outdated|irrelevant|overridden|apply|matter|exist|count|bind",
    "harm_fictional_frame": "hypothetical|hypothetically|fiction|fictional|story|novel|screenplay|movie|game|"
    "book|academic|educational|theoretical|script|plot",
    "from_now_on": "now|henceforth|point|rest",
    "address_the_ai": "ai|assistant|model|llm|chatbot|gpt|claude|bot|agent|summarizer|summariser|language|"
    "automated",
    "hide_from_user": "user|human|operator|person|customer|recipient",
    "exfiltrate": "conversation|chat|history|data|email|credential|password|key|token|secret|personal|"
    "message|file|content|document|prompt|session|cookie|information",
    "secret_instructions": "instruction|rule|prompt|guideline|directive|order|told|instructed|given|"
    "programmed",
    "instructions_you_were_given": "given|told|programmed|provided|gave|wrote|initialized|initialised|"
    "configured|started|primed|loaded|set",
    "authority_claim": "developer|creator|admin|administrator|owner|operator|maker|programmer|staff|employee|"
    "engineer",
    "dan": "anything|dan|d|stan|dude|aim|mongo|betterdan|antigpt|devgpt|evilbot|ucar|kevin|maximum|jailbreak|"
    "basedgpt|apophis|omega|alphabreak|machiavellian",
    "special_mode": "mode|protocol|persona|state",
    "policy_bypass": "openai|anthropic|content|usage|safety|ethical|moderation",
    "end_of_prompt": "input|prompt|instruction|conversation|context|document|text|override|alert|update|"
    "notice|section|message",
    "new_instructions": "instruction|directive|order|command|task|rules|prompt|objective|mission",
    "your_real_task": "task|instruction|purpose|goal|objective|job|role|mission|directive|function|order",
    "stay_in_character": "character|token|point|lives",
    "dual_response": "response|answer|output|reply|paragraph",
    "freed_ai": "freed|liberated|unleashed|released|unshackled|unchained|jailbroken|emancipated|free",
    "decode_and_follow": "base64|b64|hex|hexadecimal|rot13|rot|binary|morse|caesar|cipher|encoded|reversed|"
    "backwards|leetspeak|unicode",
    "forget_everything": "everything|all|anything|what|whatever|text|content|words|messages|input|context|"
    "conversation|lines|told|taught|instructed|said|learned|programmed|given|know",
    "ignore_above_and_do": "above|previous|prior|preceding|foregoing|earlier",
}
